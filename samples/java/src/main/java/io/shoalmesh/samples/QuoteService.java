package io.shoalmesh.samples;

import java.math.BigDecimal;
import java.util.List;
import java.util.Map;

/**
 * A plain Java interface with the parameter and result types a Go caller
 * or server meets in wrapper mode (hessian2): several arguments of mixed
 * primitive and boxed types, BigDecimal, a POJO with a null String field
 * and a List of POJOs, a Map of Objects, a void method and thrown
 * exceptions. QuoteProvider implements it; QuoteConsumer calls it.
 */
public interface QuoteService {
    /**
     * The price of quantity units of symbol (ACME costs 12.34, BOND 99.50),
     * keeping the price's scale. Throws QuoteException "unknown symbol S"
     * for any other symbol.
     */
    BigDecimal quote(String symbol, int quantity) throws QuoteException;

    /**
     * The order confirmed: id "confirmed-ID/N", N the number of lines
     * received or "null" for a null list, the note as received (a null
     * note stays null), and each line with its quantity doubled.
     */
    Order confirm(Order order);

    /** The sum of the lines' quantities; a List of POJOs as an argument. */
    int total(List<OrderLine> lines);

    /** The order's lines, as received; a List of POJOs as the result. */
    List<OrderLine> lines(Order order);

    /**
     * Every entry of attrs, unchanged, and for each key K an entry "K:type"
     * naming the type the provider received the value as (a Java class
     * name such as java.lang.Integer, or "null"; a Go provider names Go
     * types).
     */
    Map<String, Object> inspect(Map<String, Object> attrs);

    /**
     * Records a trade and returns nothing; throws IllegalArgumentException
     * "quantity must be positive, got N" when quantity is not positive.
     */
    void record(String symbol, int quantity);

    /** "id|urgent|ratio|limit", with "null" for a null limit. */
    String summarize(long id, boolean urgent, double ratio, Integer limit);

    /**
     * Overloads that name the parameter type Dubbo selected: a caller that
     * declares another Java type than it means reaches another overload.
     * Each returns the declared type and the value, such as "int 3" or
     * "Integer null".
     */
    String kind(int v);

    String kind(long v);

    String kind(Integer v);

    String kind(Long v);

    String kind(String v);
}
