package io.shoalmesh.samples;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ReferenceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;

/**
 * consumer-quote: calls every QuoteService method at --target, the way a
 * Java application would, and checks each answer exactly (Java equals:
 * BigDecimal's scale, Integer vs Long, null vs ""). It prints "PASS NAME"
 * or "FAIL NAME: ..." per check and exits with status 1 when any failed.
 *
 * <p>The provider it checks is Shoal's Go provider (interop
 * TestHessianJava), so inspect's "K:type" entries name Go types.
 */
final class QuoteConsumer {
    private QuoteConsumer() {}

    /** One check: a name and what it runs; it throws AssertionError on a mismatch. */
    private record Check(String name, Body body) {}

    @FunctionalInterface
    private interface Body {
        void run() throws Exception;
    }

    static void run(Main.Options opts) {
        ApplicationConfig app = new ApplicationConfig(opts.app.isEmpty() ? "java-quote-consumer" : opts.app);
        app.setQosEnable(false);
        DubboBootstrap boot = DubboBootstrap.getInstance().application(app);
        ReferenceConfig<QuoteService> ref = new ReferenceConfig<>();
        ref.setInterface(QuoteService.class);
        ref.setUrl(opts.target);
        ref.setTimeout(20000);
        ref.setRetries(0);
        boot.reference(ref);
        boot.start();
        QuoteService svc = ref.get();

        int failed = 0;
        for (Check c : checks(svc)) {
            try {
                c.body().run();
                System.out.println("PASS " + c.name());
            } catch (AssertionError e) {
                failed++;
                System.out.println("FAIL " + c.name() + ": " + e.getMessage());
            } catch (Exception e) {
                failed++;
                System.out.println("FAIL " + c.name() + ": threw " + e.getClass().getName() + ": " + e.getMessage());
            }
            System.out.flush();
        }
        boot.stop();
        System.exit(failed == 0 ? 0 : 1);
    }

    private static List<Check> checks(QuoteService svc) {
        List<Check> cs = new ArrayList<>();
        cs.add(new Check("quote", () -> equal(new BigDecimal("37.02"), svc.quote("ACME", 3))));
        cs.add(new Check("quote-scale", () -> equal(new BigDecimal("199.00"), svc.quote("BOND", 2))));
        cs.add(new Check("quote-exception", () -> {
            try {
                svc.quote("NOPE", 1);
                throw new AssertionError("quote(NOPE, 1) returned; want QuoteException");
            } catch (QuoteException e) {
                equal("unknown symbol NOPE", e.getMessage());
            }
        }));
        cs.add(new Check("confirm-null-note", () -> {
            Order in = new Order("o-1", null, new ArrayList<>(List.of(new OrderLine("a", 1), new OrderLine("b", 2))));
            Order got = svc.confirm(in);
            equal(new Order("confirmed-o-1/2", null, List.of(new OrderLine("a", 2), new OrderLine("b", 4))), got);
        }));
        cs.add(new Check("confirm-note-empty-lines", () -> {
            Order got = svc.confirm(new Order("o-2", "gift", new ArrayList<>()));
            equal(new Order("confirmed-o-2/0", "gift", List.of()), got);
        }));
        cs.add(new Check("confirm-null-lines", () -> equal(new Order("confirmed-o-3/null", null, null), svc.confirm(new Order("o-3", null, null)))));
        cs.add(new Check("total", () -> equal(7, svc.total(List.of(new OrderLine("a", 3), new OrderLine("b", 4))))));
        cs.add(new Check("lines", () -> equal(List.of(new OrderLine("a", 3), new OrderLine("b", 4)),
                svc.lines(new Order("o-4", null, List.of(new OrderLine("a", 3), new OrderLine("b", 4)))))));
        cs.add(new Check("inspect", () -> {
            Map<String, Object> in = new LinkedHashMap<>();
            in.put("name", "x");
            in.put("count", 3);
            in.put("total", 1L << 40);
            in.put("ratio", 0.5);
            in.put("ok", true);
            in.put("none", null);
            in.put("tags", new ArrayList<>(List.of("a", "b")));
            in.put("price", new BigDecimal("1.50"));
            // A LinkedHashMap, which hessian2 writes as a typed map.
            Map<String, Object> want = new LinkedHashMap<>(in);
            // What the Go provider received the values as.
            want.put("name:type", "string");
            want.put("count:type", "int32");
            want.put("total:type", "int64");
            want.put("ratio:type", "float64");
            want.put("ok:type", "bool");
            want.put("none:type", "null");
            want.put("tags:type", "[]interface {}");
            want.put("price:type", "*gxbig.Decimal");
            // Map.equals compares values with equals: Integer 3 is not Long 3.
            equal(want, svc.inspect(in));
        }));
        cs.add(new Check("record", () -> svc.record("ACME", 5)));
        cs.add(new Check("record-exception", () -> {
            try {
                svc.record("ACME", 0);
                throw new AssertionError("record(ACME, 0) returned; want IllegalArgumentException");
            } catch (IllegalArgumentException e) {
                equal("quantity must be positive, got 0", e.getMessage());
            }
        }));
        cs.add(new Check("summarize-null-limit",
                () -> equal("9007199254740993|true|0.1|null", svc.summarize(9007199254740993L, true, 0.1, null))));
        cs.add(new Check("summarize-limit", () -> equal("-1|false|-2.5|7", svc.summarize(-1L, false, -2.5, 7))));
        return cs;
    }

    private static void equal(Object want, Object got) {
        if (!Objects.equals(want, got)) {
            throw new AssertionError("got " + got + " (" + typeOf(got) + "), want " + want + " (" + typeOf(want) + ")");
        }
    }

    private static String typeOf(Object o) {
        return o == null ? "null" : o.getClass().getName();
    }
}
