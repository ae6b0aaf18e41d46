package io.shoalmesh.samples;

import java.util.HashMap;
import java.util.Map;
import org.apache.dubbo.config.ServiceConfig;

/**
 * The provider side of GreetingService, a plain Java interface served over
 * Triple in wrapper mode (hessian2). IdlProvider exports it next to
 * greet.GreetService, once per --export group:version.
 */
final class WrapperProvider {
    private WrapperProvider() {}

    static ServiceConfig<GreetingService> service(int port, String group, String version) {
        ServiceConfig<GreetingService> svc = new ServiceConfig<>();
        svc.setInterface(GreetingService.class);
        svc.setRef(new Greeting(group, version));
        if (!group.isEmpty()) {
            svc.setGroup(group);
        }
        if (!version.isEmpty()) {
            svc.setVersion(version);
        }
        return svc;
    }

    /** The implementation: reports what it saw, like IdlProvider.Greeter. */
    static final class Greeting implements GreetingService {
        private final String group;
        private final String version;

        Greeting(String group, String version) {
            this.group = group;
            this.version = version;
        }

        @Override
        public String greet(String name) {
            return "Hello, " + name;
        }

        @Override
        public Person describe(Person p) {
            Person out = new Person(p.getName(), p.getAge() + 1);
            out.setGreeting("Hello, " + p.getName() + ", " + p.getAge());
            Map<String, String> seen = new HashMap<>();
            Received.into(seen);
            seen.put("export", group + ":" + version);
            out.setSeen(seen);
            return out;
        }

        @Override
        public String fail(String why) throws GreetingException {
            throw new GreetingException(why);
        }
    }
}
