package io.shoalmesh.samples;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import com.google.protobuf.ByteString;
import io.shoalmesh.samples.greet.GreetRequest;
import io.shoalmesh.samples.greet.GreetResponse;
import io.shoalmesh.samples.greet.GreetService;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.dubbo.common.stream.StreamObserver;
import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ReferenceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.RpcContext;
import org.apache.dubbo.rpc.RpcException;
import org.apache.dubbo.rpc.StatusRpcException;
import org.apache.dubbo.rpc.TriRpcStatus;

/**
 * A case-driven IDL consumer of greet.GreetService: it reads interop cases
 * (one JSON object per line, the shape of Shoal's interop/cases.yaml) on
 * stdin, calls --target for each, and prints one JSON outcome per line.
 * Cases naming a GreetingService method (greet, describe, fail) go to
 * WrapperConsumer: the plain Java interface, wrapper mode.
 */
final class IdlConsumer {
    private IdlConsumer() {}

    private static final Gson GSON = new Gson();

    /** A case as Shoal's interop suite sends it. */
    static final class Case {
        String name;
        String method;
        List<Req> requests = new ArrayList<>();
        String group = "";
        String version = "";
        Map<String, String> attachments = new LinkedHashMap<>();
        int timeout_ms;
    }

    /** One request of a case. */
    static final class Req {
        String name = "";
        int payload_bytes;
        int count;
        int sleep_ms;
        int fail_code;
        int age;

        GreetRequest proto() {
            byte[] payload = new byte[payload_bytes];
            for (int i = 0; i < payload.length; i++) {
                payload[i] = (byte) i;
            }
            return GreetRequest.newBuilder().setName(name).setPayload(ByteString.copyFrom(payload))
                    .setCount(count).setSleepMs(sleep_ms).setFailCode(fail_code).build();
        }
    }

    static void run(Main.Options opts) throws Exception {
        ApplicationConfig app = new ApplicationConfig(opts.app.isEmpty() ? "java-greet-consumer" : opts.app);
        app.setQosEnable(false);
        DubboBootstrap boot = DubboBootstrap.getInstance().application(app);
        boot.start();
        Map<String, GreetService> refs = new HashMap<>();
        Map<String, GreetingService> wrapperRefs = new HashMap<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            Case c = GSON.fromJson(line, Case.class);
            int timeout = c.timeout_ms > 0 ? c.timeout_ms : 20000;
            String key = c.group + "|" + c.version + "|" + timeout;
            if (WrapperConsumer.METHODS.contains(c.method)) {
                GreetingService w = wrapperRefs.computeIfAbsent(key,
                        k -> WrapperConsumer.reference(opts.target, c.group, c.version, timeout));
                System.out.println(GSON.toJson(WrapperConsumer.call(w, c)));
                System.out.flush();
                continue;
            }
            GreetService svc = refs.computeIfAbsent(key, k -> reference(opts.target, c.group, c.version, timeout));
            System.out.println(GSON.toJson(call(svc, c, timeout)));
            System.out.flush();
        }
        boot.stop();
    }

    private static GreetService reference(String target, String group, String version, int timeout) {
        ReferenceConfig<GreetService> ref = new ReferenceConfig<>();
        ref.setInterface(GreetService.class);
        ref.setUrl(target);
        ref.setTimeout(timeout);
        ref.setRetries(0);
        if (!group.isEmpty()) {
            ref.setGroup(group);
        }
        if (!version.isEmpty()) {
            ref.setVersion(version);
        }
        DubboBootstrap.getInstance().reference(ref);
        return ref.get();
    }

    private static JsonObject call(GreetService svc, Case c, int timeout) {
        JsonObject out = new JsonObject();
        List<GreetResponse> got = new ArrayList<>();
        try {
            c.attachments.forEach((k, v) -> RpcContext.getClientAttachment().setAttachment(k, v));
            switch (c.method) {
                case "Greet" -> got.add(svc.greet(c.requests.get(0).proto()));
                case "GreetServerStream" -> {
                    Collector col = new Collector();
                    svc.greetServerStream(c.requests.get(0).proto(), col);
                    col.await(timeout);
                    got.addAll(col.responses);
                }
                case "GreetClientStream", "GreetBidiStream" -> {
                    Collector col = new Collector();
                    StreamObserver<GreetRequest> req = "GreetBidiStream".equals(c.method)
                            ? svc.greetBidiStream(col) : svc.greetClientStream(col);
                    for (Req r : c.requests) {
                        req.onNext(r.proto());
                    }
                    req.onCompleted();
                    col.await(timeout);
                    got.addAll(col.responses);
                }
                default -> throw new IllegalArgumentException("unknown method " + c.method);
            }
            out.addProperty("code", 0);
        } catch (Throwable t) {
            out.addProperty("code", codeOf(t));
            out.addProperty("message", String.valueOf(t.getMessage()));
            out.addProperty("error_class", t.getClass().getName());
        }
        com.google.gson.JsonArray rs = new com.google.gson.JsonArray();
        for (GreetResponse r : got) {
            JsonObject o = new JsonObject();
            o.addProperty("greeting", r.getGreeting());
            o.addProperty("payload_bytes", r.getPayload().size());
            o.addProperty("served_by", r.getServedBy());
            o.add("seen", GSON.toJsonTree(r.getSeenMap()));
            rs.add(o);
        }
        out.add("responses", rs);
        return out;
    }

    /** The gRPC status code of a failed call. */
    static int codeOf(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof StatusRpcException s) {
                return s.getStatus().code.code;
            }
            if (c instanceof RpcException r && r.isTimeout()) {
                return TriRpcStatus.Code.DEADLINE_EXCEEDED.code;
            }
        }
        return TriRpcStatus.getStatus(t).code.code;
    }

    /** Collects a response stream and its end. */
    static final class Collector implements StreamObserver<GreetResponse> {
        final List<GreetResponse> responses = new ArrayList<>();
        private final CountDownLatch done = new CountDownLatch(1);
        private volatile Throwable error;

        @Override
        public synchronized void onNext(GreetResponse r) {
            responses.add(r);
        }

        @Override
        public void onError(Throwable t) {
            error = t;
            done.countDown();
        }

        @Override
        public void onCompleted() {
            done.countDown();
        }

        void await(int timeoutMs) throws Throwable {
            if (!done.await(timeoutMs + 1000L, TimeUnit.MILLISECONDS)) {
                throw TriRpcStatus.DEADLINE_EXCEEDED.withDescription("stream did not end in time").asException();
            }
            if (error != null) {
                throw error;
            }
        }
    }
}
