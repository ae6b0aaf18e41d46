package io.shoalmesh.samples;

import io.shoalmesh.samples.greet.DubboGreetServiceTriple;
import io.shoalmesh.samples.greet.GreetRequest;
import io.shoalmesh.samples.greet.GreetResponse;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.apache.dubbo.common.stream.StreamObserver;
import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ProtocolConfig;
import org.apache.dubbo.config.ReferenceConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.ServiceConfig;
import org.apache.dubbo.config.TracingConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.config.nested.ExporterConfig;
import org.apache.dubbo.rpc.RpcContext;
import org.apache.dubbo.rpc.TriRpcStatus;

/**
 * An IDL provider of greet.GreetService that reports what it saw, for
 * interop tests: greeting "Hello, NAME", served_by "java@PORT", and in
 * seen every attachment plus the group and version the request carried
 * (see Received), and the export that served it under "export".
 * Each export also serves GreetingService and QuoteService, plain Java
 * interfaces (wrapper mode, hessian2), under the same group and version.
 *
 * <p>With --forward, Greet is answered by calling Greet on the GreetService
 * at that address (the caller's x-request-id passed on), so Java sits in
 * the middle of a call chain. With --otlp, Dubbo's own tracing
 * (dubbo-tracing: Micrometer Tracing over OpenTelemetry) is on, sampling
 * every call and exporting OTLP over gRPC to that endpoint.
 */
final class IdlProvider {
    private IdlProvider() {}

    static void run(Main.Options opts) throws Exception {
        ApplicationConfig app = new ApplicationConfig(opts.app.isEmpty() ? "java-greet-provider" : opts.app);
        app.setQosEnable(false);
        ProtocolConfig protocol = new ProtocolConfig("tri", opts.port);
        DubboBootstrap boot = DubboBootstrap.getInstance()
                .application(app)
                .registry(new RegistryConfig("N/A"))
                .protocol(protocol);
        if (!opts.otlp.isEmpty()) {
            boot.tracing(tracing(opts.otlp, opts.propagation));
        }
        ReferenceConfig<io.shoalmesh.samples.greet.GreetService> next = null;
        if (!opts.forward.isEmpty()) {
            next = new ReferenceConfig<>();
            next.setInterface(io.shoalmesh.samples.greet.GreetService.class);
            next.setUrl(opts.forward);
            next.setRetries(0);
            next.setTimeout(20000);
            boot.reference(next);
        }
        Forward forward = new Forward();
        for (String export : opts.exports) {
            String[] gv = export.split(":", -1);
            ServiceConfig<io.shoalmesh.samples.greet.GreetService> svc = new ServiceConfig<>();
            svc.setInterface(io.shoalmesh.samples.greet.GreetService.class);
            svc.setRef(new Greeter(opts.port, gv[0], gv.length > 1 ? gv[1] : "", forward));
            if (!gv[0].isEmpty()) {
                svc.setGroup(gv[0]);
            }
            if (gv.length > 1 && !gv[1].isEmpty()) {
                svc.setVersion(gv[1]);
            }
            boot.service(svc);
            boot.service(WrapperProvider.service(opts.port, gv[0], gv.length > 1 ? gv[1] : ""));
            boot.service(QuoteProvider.service(gv[0], gv.length > 1 ? gv[1] : ""));
        }
        boot.start();
        if (next != null) {
            forward.next = next.get();
        }
        System.out.println("READY port=" + opts.port);
        System.out.flush();
        // Run until stdin closes (the parent test ended) or SIGTERM.
        CountDownLatch done = new CountDownLatch(1);
        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // discard
                }
            } catch (Exception ignored) {
                // closed
            }
            done.countDown();
        });
        stdin.setDaemon(true);
        stdin.start();
        Runtime.getRuntime().addShutdownHook(new Thread(done::countDown));
        done.await();
        boot.stop();
    }

    /**
     * Dubbo's tracing: enabled, every call sampled, the given propagation
     * type (W3C or B3), spans exported over OTLP/gRPC to endpoint.
     */
    private static TracingConfig tracing(String endpoint, String propagation) {
        TracingConfig tc = new TracingConfig();
        tc.setEnabled(true);
        tc.getSampling().setProbability(1.0f);
        tc.getPropagation().setType(propagation);
        ExporterConfig.OtlpConfig otlp = new ExporterConfig.OtlpConfig();
        otlp.setEndpoint(endpoint);
        tc.getTracingExporter().setOtlpConfig(otlp);
        return tc;
    }

    /** The downstream GreetService of --forward, set once Dubbo has started. */
    static final class Forward {
        volatile io.shoalmesh.samples.greet.GreetService next;
    }

    /** The service implementation. */
    static final class Greeter extends DubboGreetServiceTriple.GreetServiceImplBase {
        private final String servedBy;
        private final String group;
        private final String version;
        private final Forward forward;

        Greeter(int port, String group, String version, Forward forward) {
            this.servedBy = "java@" + port;
            this.group = group;
            this.version = version;
            this.forward = forward;
        }

        /**
         * Greet through the downstream service: its answer, served_by
         * "java@PORT&gt;" + the downstream's, and in seen what this hop
         * received under "java." keys. Dubbo's tracing carries the trace
         * context; x-request-id is passed on here, as an application does
         * (Dubbo forwards no attachment by itself).
         */
        private GreetResponse forwarded(io.shoalmesh.samples.greet.GreetService next, GreetRequest req) {
            Map<String, String> here = new HashMap<>();
            Received.into(here);
            Object rid = RpcContext.getServerAttachment().getObjectAttachment("x-request-id");
            if (rid != null) {
                RpcContext.getClientAttachment().setAttachment("x-request-id", rid.toString());
            }
            GreetResponse down = next.greet(req);
            GreetResponse.Builder b = down.toBuilder().setServedBy(servedBy + ">" + down.getServedBy());
            here.forEach((k, v) -> b.putSeen("java." + k, v));
            return b.build();
        }

        private GreetResponse reply(GreetRequest req) {
            if (req.getSleepMs() > 0) {
                try {
                    Thread.sleep(req.getSleepMs());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            if (req.getFailCode() != 0) {
                throw TriRpcStatus.fromCode(req.getFailCode()).withDescription("failed on request (fail_code)").asException();
            }
            GreetResponse.Builder b = GreetResponse.newBuilder()
                    .setGreeting("Hello, " + req.getName())
                    .setPayload(req.getPayload())
                    .setServedBy(servedBy);
            putSeen(b);
            return b.build();
        }

        private void putSeen(GreetResponse.Builder b) {
            Map<String, String> seen = new HashMap<>();
            Received.into(seen);
            // The export that served the call, for diagnosis; the checks
            // read group and version, which come from the request.
            seen.put("export", group + ":" + version);
            b.putAllSeen(seen);
        }

        @Override
        public GreetResponse greet(GreetRequest request) {
            io.shoalmesh.samples.greet.GreetService next = forward.next;
            return next != null ? forwarded(next, request) : reply(request);
        }

        @Override
        public void greetServerStream(GreetRequest request, StreamObserver<GreetResponse> out) {
            try {
                for (int i = 0; i < Math.max(request.getCount(), 1); i++) {
                    out.onNext(reply(request));
                }
                out.onCompleted();
            } catch (RuntimeException e) {
                out.onError(e);
            }
        }

        @Override
        public StreamObserver<GreetRequest> greetClientStream(StreamObserver<GreetResponse> out) {
            List<String> names = new ArrayList<>();
            GreetResponse.Builder seen = GreetResponse.newBuilder();
            putSeen(seen);
            return new StreamObserver<>() {
                @Override
                public void onNext(GreetRequest req) {
                    names.add(req.getName());
                }

                @Override
                public void onError(Throwable t) {
                    out.onError(t);
                }

                @Override
                public void onCompleted() {
                    out.onNext(seen.setGreeting("Hello, " + String.join(", ", names)).setServedBy(servedBy).build());
                    out.onCompleted();
                }
            };
        }

        @Override
        public StreamObserver<GreetRequest> greetBidiStream(StreamObserver<GreetResponse> out) {
            GreetResponse.Builder seen = GreetResponse.newBuilder();
            putSeen(seen);
            return new StreamObserver<>() {
                @Override
                public void onNext(GreetRequest req) {
                    try {
                        GreetResponse r = reply(req);
                        out.onNext(r.toBuilder().putAllSeen(seen.getSeenMap()).build());
                    } catch (RuntimeException e) {
                        out.onError(e);
                    }
                }

                @Override
                public void onError(Throwable t) {
                    out.onError(t);
                }

                @Override
                public void onCompleted() {
                    out.onCompleted();
                }
            };
        }
    }
}
