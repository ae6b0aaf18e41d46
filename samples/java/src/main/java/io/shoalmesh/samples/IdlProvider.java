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
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.ServiceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.TriRpcStatus;

/**
 * An IDL provider of greet.GreetService that reports what it saw, for
 * interop tests: greeting "Hello, NAME", served_by "java@PORT", and in
 * seen every attachment plus the group and version the request carried
 * (see Received), and the export that served it under "export".
 * Each export also serves GreetingService, a plain Java interface (wrapper
 * mode, hessian2), under the same group and version.
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
        for (String export : opts.exports) {
            String[] gv = export.split(":", -1);
            ServiceConfig<io.shoalmesh.samples.greet.GreetService> svc = new ServiceConfig<>();
            svc.setInterface(io.shoalmesh.samples.greet.GreetService.class);
            svc.setRef(new Greeter(opts.port, gv[0], gv.length > 1 ? gv[1] : ""));
            if (!gv[0].isEmpty()) {
                svc.setGroup(gv[0]);
            }
            if (gv.length > 1 && !gv[1].isEmpty()) {
                svc.setVersion(gv[1]);
            }
            boot.service(svc);
            boot.service(WrapperProvider.service(opts.port, gv[0], gv.length > 1 ? gv[1] : ""));
        }
        boot.start();
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

    /** The service implementation. */
    static final class Greeter extends DubboGreetServiceTriple.GreetServiceImplBase {
        private final String servedBy;
        private final String group;
        private final String version;

        Greeter(int port, String group, String version) {
            this.servedBy = "java@" + port;
            this.group = group;
            this.version = version;
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
            return reply(request);
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
