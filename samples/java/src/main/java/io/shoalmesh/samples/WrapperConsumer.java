package io.shoalmesh.samples;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.Map;
import java.util.Set;
import org.apache.dubbo.config.ReferenceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.RpcContext;
import org.apache.dubbo.rpc.RpcException;

/**
 * The consumer side of GreetingService for IdlConsumer: runs the cases whose
 * method is a GreetingService method (greet, describe, fail) and reports
 * a thrown business exception as {"code":0,"exception":CLASS,"message":...}.
 */
final class WrapperConsumer {
    private WrapperConsumer() {}

    private static final Gson GSON = new Gson();

    static final Set<String> METHODS = Set.of("greet", "describe", "fail");

    static GreetingService reference(String target, String group, String version, int timeout) {
        ReferenceConfig<GreetingService> ref = new ReferenceConfig<>();
        ref.setInterface(GreetingService.class);
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

    static JsonObject call(GreetingService svc, IdlConsumer.Case c) {
        JsonObject out = new JsonObject();
        JsonArray rs = new JsonArray();
        IdlConsumer.Req r = c.requests.isEmpty() ? new IdlConsumer.Req() : c.requests.get(0);
        try {
            c.attachments.forEach((k, v) -> RpcContext.getClientAttachment().setAttachment(k, v));
            switch (c.method) {
                case "greet" -> rs.add(response(svc.greet(r.name), Map.of()));
                case "describe" -> {
                    Person p = svc.describe(new Person(r.name, r.age));
                    rs.add(response(p.getGreeting(), p.getSeen()));
                }
                case "fail" -> rs.add(response(svc.fail(r.name), Map.of()));
                default -> throw new IllegalArgumentException("unknown method " + c.method);
            }
            out.addProperty("code", 0);
        } catch (RpcException e) {
            out.addProperty("code", IdlConsumer.codeOf(e));
            out.addProperty("message", String.valueOf(e.getMessage()));
            out.addProperty("error_class", e.getClass().getName());
        } catch (Exception e) {
            // A business exception thrown by the provider: the call succeeded.
            out.addProperty("code", 0);
            out.addProperty("exception", e.getClass().getName());
            out.addProperty("message", String.valueOf(e.getMessage()));
        }
        out.add("responses", rs);
        return out;
    }

    private static JsonObject response(String greeting, Map<String, String> seen) {
        JsonObject o = new JsonObject();
        o.addProperty("greeting", greeting);
        o.add("seen", GSON.toJsonTree(seen == null ? Map.of() : seen));
        return o;
    }
}
