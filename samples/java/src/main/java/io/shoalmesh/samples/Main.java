package io.shoalmesh.samples;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Entry point of the Java Dubbo samples.
 *
 * <pre>
 * java -jar shoal-java-samples.jar provider-idl --port 20000 [--export g:v] [--forward tri://127.0.0.1:20001]
 *     [--otlp http://127.0.0.1:4317 [--propagation W3C|B3]]
 * java -jar shoal-java-samples.jar consumer-idl --target tri://127.0.0.1:20000 &lt; cases.jsonl
 * java -jar shoal-java-samples.jar consumer-quote --target tri://127.0.0.1:20000
 * </pre>
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            usage();
            System.exit(2);
        }
        Options opts = Options.parse(args);
        switch (args[0]) {
            case "provider-idl" -> IdlProvider.run(opts);
            case "consumer-idl" -> IdlConsumer.run(opts);
            case "consumer-quote" -> QuoteConsumer.run(opts);
            default -> {
                System.err.println("unknown command " + args[0]);
                usage();
                System.exit(2);
            }
        }
    }

    private static void usage() {
        System.err.println("usage: provider-idl --port N [--export group:version ...] [--forward tri://host:port]"
                + " [--otlp http://host:port [--propagation W3C|B3]] | consumer-idl --target tri://host:port"
                + " | consumer-quote --target tri://host:port");
    }

    /** Command-line options shared by the commands. */
    static final class Options {
        int port = 20000;
        String target = "";
        String app = "";
        /** provider-idl: answer Greet by calling this GreetService (tri://host:port). */
        String forward = "";
        /** Turn Dubbo's tracing on, exporting OTLP over gRPC to this endpoint (http://host:port). */
        String otlp = "";
        /** Dubbo's tracing propagation type: W3C (Dubbo's default) or B3. */
        String propagation = "W3C";
        /** Exports as group:version pairs; "" means neither. */
        final List<String> exports = new ArrayList<>();
        final Map<String, String> attachments = new LinkedHashMap<>();

        static Options parse(String[] args) {
            Options o = new Options();
            for (int i = 1; i < args.length; i++) {
                String v = i + 1 < args.length ? args[i + 1] : "";
                switch (args[i]) {
                    case "--port" -> { o.port = Integer.parseInt(v); i++; }
                    case "--target" -> { o.target = v; i++; }
                    case "--app" -> { o.app = v; i++; }
                    case "--forward" -> { o.forward = v; i++; }
                    case "--otlp" -> { o.otlp = v; i++; }
                    case "--propagation" -> { o.propagation = v; i++; }
                    case "--export" -> { o.exports.add(v); i++; }
                    case "--attachment" -> {
                        int eq = v.indexOf('=');
                        o.attachments.put(v.substring(0, eq), v.substring(eq + 1));
                        i++;
                    }
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
            if (o.exports.isEmpty()) {
                o.exports.add(":");
            }
            return o;
        }
    }
}
