package io.shoalmesh.samples;

/**
 * A plain Java interface (no IDL): Dubbo serves it over Triple in wrapper
 * mode, each argument hessian2-encoded inside TripleRequestWrapper.
 */
public interface GreetingService {
    /** Returns "Hello, NAME". */
    String greet(String name);

    /** Returns p with greeting "Hello, NAME (AGE)", age + 1, and in seen the
     * group, version and attachments the provider saw. */
    Person describe(Person p);

    /** Always throws GreetingException with message why. */
    String fail(String why) throws GreetingException;
}
