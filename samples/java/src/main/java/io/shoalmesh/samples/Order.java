package io.shoalmesh.samples;

import java.io.Serializable;
import java.util.List;
import java.util.Objects;

/**
 * The order POJO of QuoteService (Go: a struct registered as
 * io.shoalmesh.samples.Order with a *string note and []*OrderLine lines).
 */
public class Order implements Serializable {
    private static final long serialVersionUID = 1L;

    private String id;
    /** May be null. */
    private String note;
    private List<OrderLine> lines;

    public Order() {}

    public Order(String id, String note, List<OrderLine> lines) {
        this.id = id;
        this.note = note;
        this.lines = lines;
    }

    public String getId() { return id; }
    public void setId(String id) { this.id = id; }
    public String getNote() { return note; }
    public void setNote(String note) { this.note = note; }
    public List<OrderLine> getLines() { return lines; }
    public void setLines(List<OrderLine> lines) { this.lines = lines; }

    @Override
    public boolean equals(Object o) {
        return o instanceof Order other && Objects.equals(id, other.id) && Objects.equals(note, other.note)
                && Objects.equals(lines, other.lines);
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, note, lines);
    }

    @Override
    public String toString() {
        return "Order{id=" + id + ", note=" + note + ", lines=" + lines + "}";
    }
}
