package io.shoalmesh.samples;

/** The business exception of QuoteService.quote. */
public class QuoteException extends Exception {
    private static final long serialVersionUID = 1L;

    public QuoteException() {
        super();
    }

    public QuoteException(String message) {
        super(message);
    }
}
