package io.shoalmesh.samples;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.dubbo.config.ServiceConfig;

/**
 * The provider side of QuoteService (wrapper mode, hessian2). IdlProvider
 * exports it next to GreetingService, once per --export group:version.
 */
final class QuoteProvider {
    private QuoteProvider() {}

    static ServiceConfig<QuoteService> service(String group, String version) {
        ServiceConfig<QuoteService> svc = new ServiceConfig<>();
        svc.setInterface(QuoteService.class);
        svc.setRef(new Quotes());
        if (!group.isEmpty()) {
            svc.setGroup(group);
        }
        if (!version.isEmpty()) {
            svc.setVersion(version);
        }
        return svc;
    }

    /** The implementation, as QuoteService's comments describe it. */
    static final class Quotes implements QuoteService {
        private static final Map<String, BigDecimal> PRICES = Map.of(
                "ACME", new BigDecimal("12.34"),
                "BOND", new BigDecimal("99.50"));

        @Override
        public BigDecimal quote(String symbol, int quantity) throws QuoteException {
            BigDecimal price = PRICES.get(symbol);
            if (price == null) {
                throw new QuoteException("unknown symbol " + symbol);
            }
            return price.multiply(BigDecimal.valueOf(quantity));
        }

        @Override
        public Order confirm(Order order) {
            List<OrderLine> lines = null;
            if (order.getLines() != null) {
                lines = new ArrayList<>();
                for (OrderLine l : order.getLines()) {
                    lines.add(new OrderLine(l.getSku(), l.getQuantity() * 2));
                }
            }
            String n = order.getLines() == null ? "null" : String.valueOf(order.getLines().size());
            return new Order("confirmed-" + order.getId() + "/" + n, order.getNote(), lines);
        }

        @Override
        public int total(List<OrderLine> lines) {
            int n = 0;
            for (OrderLine l : lines) {
                n += l.getQuantity();
            }
            return n;
        }

        @Override
        public List<OrderLine> lines(Order order) {
            return order.getLines();
        }

        @Override
        public Map<String, Object> inspect(Map<String, Object> attrs) {
            Map<String, Object> out = new LinkedHashMap<>(attrs);
            for (Map.Entry<String, Object> e : attrs.entrySet()) {
                Object v = e.getValue();
                out.put(e.getKey() + ":type", v == null ? "null" : v.getClass().getName());
            }
            return out;
        }

        @Override
        public void record(String symbol, int quantity) {
            if (quantity <= 0) {
                throw new IllegalArgumentException("quantity must be positive, got " + quantity);
            }
        }

        @Override
        public String summarize(long id, boolean urgent, double ratio, Integer limit) {
            return id + "|" + urgent + "|" + ratio + "|" + limit;
        }

        @Override
        public String kind(int v) {
            return "int " + v;
        }

        @Override
        public String kind(long v) {
            return "long " + v;
        }

        @Override
        public String kind(Integer v) {
            return "Integer " + v;
        }

        @Override
        public String kind(Long v) {
            return "Long " + v;
        }

        @Override
        public String kind(String v) {
            return "String " + v;
        }
    }
}
