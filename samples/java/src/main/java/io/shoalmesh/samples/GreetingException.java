package io.shoalmesh.samples;

/** The business exception of GreetingService.fail. */
public class GreetingException extends Exception {
    private static final long serialVersionUID = 1L;

    public GreetingException() {
        super();
    }

    public GreetingException(String message) {
        super(message);
    }
}
