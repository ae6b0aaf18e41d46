package io.shoalmesh.samples;

import java.io.Serializable;
import java.util.Objects;

/** A line of an Order (Go: a struct registered as io.shoalmesh.samples.OrderLine). */
public class OrderLine implements Serializable {
    private static final long serialVersionUID = 1L;

    private String sku;
    private int quantity;

    public OrderLine() {}

    public OrderLine(String sku, int quantity) {
        this.sku = sku;
        this.quantity = quantity;
    }

    public String getSku() { return sku; }
    public void setSku(String sku) { this.sku = sku; }
    public int getQuantity() { return quantity; }
    public void setQuantity(int quantity) { this.quantity = quantity; }

    @Override
    public boolean equals(Object o) {
        return o instanceof OrderLine other && Objects.equals(sku, other.sku) && quantity == other.quantity;
    }

    @Override
    public int hashCode() {
        return Objects.hash(sku, quantity);
    }

    @Override
    public String toString() {
        return "OrderLine{sku=" + sku + ", quantity=" + quantity + "}";
    }
}
