package io.shoalmesh.samples;

import java.util.Locale;
import java.util.Map;
import org.apache.dubbo.remoting.http12.HttpRequest;
import org.apache.dubbo.rpc.RpcContext;

/**
 * What a provider reports having seen for the current call: every
 * attachment (lower-cased keys), and the group and version the request
 * carried (tri-service-group and tri-service-version), read from the
 * request itself rather than from the export that served it, so that a
 * client that drops them cannot pass a group/version check by landing on
 * a grouped export.
 */
final class Received {
    private Received() {}

    static void into(Map<String, String> seen) {
        for (Map.Entry<String, Object> e : RpcContext.getServerAttachment().getObjectAttachments().entrySet()) {
            if (e.getValue() != null) {
                seen.put(e.getKey().toLowerCase(Locale.ROOT), String.valueOf(e.getValue()));
            }
        }
        HttpRequest req = RpcContext.getServiceContext().getRequest(HttpRequest.class);
        if (req == null) {
            seen.put("error", "no HTTP request in the service context: cannot report the group and version received");
            return;
        }
        String group = req.header("tri-service-group");
        String version = req.header("tri-service-version");
        if (group != null && !group.isEmpty()) {
            seen.put("group", group);
        }
        if (version != null && !version.isEmpty()) {
            seen.put("version", version);
        }
    }
}
