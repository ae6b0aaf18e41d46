package hessian

// Helpers for the external tests.

func HessianString(s string) ([]byte, error) { return encode(s) }

func HessianThrowable() ([]byte, error) {
	return encode(Throw("org.example.GreetingException", "by header"))
}
