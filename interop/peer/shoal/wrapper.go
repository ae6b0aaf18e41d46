package shoal

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/grpc/codes"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/hessian"
)

// Person is io.shoalmesh.samples.Person, the POJO of GreetingService.
type Person struct {
	Name     string
	Age      int32
	Greeting string
	Seen     map[string]string
}

// JavaClassName implements hessian.POJO.
func (Person) JavaClassName() string { return cases.WrapperPerson }

func init() { hessian.RegisterPOJO(&Person{}) }

// greetingService serves GreetingService as the Java provider does.
func greetingService() *hessian.Service {
	return hessian.NewService(cases.WrapperService).
		Handle(cases.MethodWrapperGreet, hessian.Unary(func(_ context.Context, name string) (string, error) {
			return "Hello, " + name, nil
		})).
		Handle(cases.MethodWrapperDescribe, hessian.Unary(func(ctx context.Context, p *Person) (*Person, error) {
			if p == nil {
				p = &Person{}
			}
			return &Person{
				Name: p.Name, Age: p.Age + 1,
				Greeting: "Hello, " + p.Name + ", " + strconv.Itoa(int(p.Age)),
				Seen:     seen(ctx),
			}, nil
		})).
		Handle(cases.MethodWrapperFail, hessian.Unary(func(_ context.Context, why string) (string, error) {
			return "", hessian.Throw(cases.WrapperException, why)
		}))
}

func isWrapper(method string) bool {
	switch method {
	case cases.MethodWrapperGreet, cases.MethodWrapperDescribe, cases.MethodWrapperFail:
		return true
	}
	return false
}

// runWrapper makes a GreetingService call of a case.
func runWrapper(ctx context.Context, cc *triple.ClientConn, c cases.Case) cases.Outcome {
	ctx, cancel := context.WithTimeout(ctx, peer.CallTimeout(c))
	defer cancel()
	md := triple.Metadata{}
	for k, v := range c.Attachments {
		md.Set(k, v)
	}
	ctx = triple.NewOutgoingContext(ctx, md)
	opts := []triple.CallOption{triple.WithGroup(c.Group), triple.WithVersion(c.Version)}
	r := c.Requests[0]

	var (
		o   cases.Outcome
		err error
	)
	switch c.Method {
	case cases.MethodWrapperGreet, cases.MethodWrapperFail:
		var s string
		s, err = hessian.Call[string](ctx, cc, cases.WrapperService, c.Method, []hessian.Arg{hessian.String(r.Name)}, opts...)
		if err == nil {
			o.Responses = append(o.Responses, cases.Response{Greeting: s})
		}
	case cases.MethodWrapperDescribe:
		var p *Person
		p, err = hessian.Call[*Person](ctx, cc, cases.WrapperService, c.Method,
			[]hessian.Arg{hessian.Object(&Person{Name: r.Name, Age: r.Age})}, opts...)
		if err == nil && p != nil {
			o.Responses = append(o.Responses, cases.Response{Greeting: p.Greeting, Seen: p.Seen})
		}
	}
	var ex *hessian.Exception
	switch {
	case errors.As(err, &ex):
		o.Code, o.Exception, o.Message = codes.OK, ex.Class, ex.Message
	case err != nil:
		o.Code = codes.Code(triple.CodeOf(err))
		o.Message = err.Error()
	}
	return o
}
