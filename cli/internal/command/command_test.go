package command

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shoalmesh/shoal/triple"
)

func TestNewAppData(t *testing.T) {
	for _, tc := range []struct {
		name, module, iface                                     string
		wantPkg, wantSvc, wantDir, wantFile, wantGo, wantModule string
	}{
		{name: "demoapp", wantPkg: "demoapp.v1", wantSvc: "GreeterService", wantDir: "api/demoapp/v1", wantFile: "greeter.proto", wantGo: "demoappv1", wantModule: "demoapp"},
		{name: "my-app", wantPkg: "my_app.v1", wantSvc: "GreeterService", wantDir: "api/my_app/v1", wantFile: "greeter.proto", wantGo: "myappv1", wantModule: "my-app"},
		{name: "orders", module: "example.com/shop/orders", iface: "shop.orders.v1.OrderService", wantPkg: "shop.orders.v1", wantSvc: "OrderService", wantDir: "api/shop/orders/v1", wantFile: "order.proto", wantGo: "ordersv1", wantModule: "example.com/shop/orders"},
		{name: "x", iface: "greet.GreetService", wantPkg: "greet", wantSvc: "GreetService", wantDir: "api/greet", wantFile: "greet.proto", wantGo: "greet", wantModule: "x"},
		{name: "x", iface: "a.b.HTTPGatewayService", wantPkg: "a.b", wantSvc: "HTTPGatewayService", wantDir: "api/a/b", wantFile: "http_gateway.proto", wantGo: "b", wantModule: "x"},
		{name: "x", iface: "a.v2.OrderItemV2Service", wantPkg: "a.v2", wantSvc: "OrderItemV2Service", wantDir: "api/a/v2", wantFile: "order_item_v2.proto", wantGo: "av2", wantModule: "x"},
		{name: "x", iface: "a.Service", wantPkg: "a", wantSvc: "Service", wantDir: "api/a", wantFile: "service.proto", wantGo: "a", wantModule: "x"},
	} {
		t.Run(tc.name+"/"+tc.iface, func(t *testing.T) {
			d, err := newAppData(tc.name, &newFlags{module: tc.module, iface: tc.iface})
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(d.ProtoPackage, d.Service, d.ProtoDir, d.ProtoFile, d.GoPackage, d.TriplePackage, d.Module)
			want := fmt.Sprint(tc.wantPkg, tc.wantSvc, tc.wantDir, tc.wantFile, tc.wantGo, tc.wantGo+"triple", tc.wantModule)
			if got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
}

func TestNewAppDataRejects(t *testing.T) {
	for _, tc := range []struct{ name, module, iface string }{
		{name: "Demo"}, {name: "1app"}, {name: "a_b"}, {name: ""},
		{name: "a", iface: "Service"}, {name: "a", iface: ".Service"}, {name: "a", iface: "a.service"},
		{name: "a", iface: "A.Service"}, {name: "a", iface: "a..Service"}, {name: "a", module: "bad path"},
	} {
		_, err := newAppData(tc.name, &newFlags{module: tc.module, iface: tc.iface})
		if exitCode(err) != ExitUsage {
			t.Errorf("newAppData(%q, module %q, interface %q) = %v, want a usage error", tc.name, tc.module, tc.iface, err)
		}
	}
}

func TestSplitMethod(t *testing.T) {
	for in, want := range map[string]string{
		"greet.GreetService/Greet":  "greet.GreetService Greet",
		"/greet.GreetService/Greet": "greet.GreetService Greet",
		"greet.GreetService.Greet":  "greet.GreetService Greet",
		"a.b.C/D":                   "a.b.C D",
	} {
		svc, m, err := splitMethod(in)
		if err != nil || svc+" "+m != want {
			t.Errorf("splitMethod(%q) = %q, %q, %v; want %s", in, svc, m, err, want)
		}
	}
	for _, in := range []string{"Greet", "/Greet", "svc/", "svc.", ""} {
		if _, _, err := splitMethod(in); exitCode(err) != ExitUsage {
			t.Errorf("splitMethod(%q) = %v, want a usage error", in, err)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errors.New("boom"), ExitError},
		{usageErrorf("bad"), ExitUsage},
		{fmt.Errorf("wrapped: %w", dataErrorf("bad json")), ExitData},
		{fmt.Errorf("call: %w", triple.NewError(triple.CodeUnavailable, "down")), int(triple.CodeUnavailable)},
		{triple.NewError(triple.CodeDeadlineExceeded, "slow"), int(triple.CodeDeadlineExceeded)},
		{errors.New(`unknown command "x" for "shoal"`), ExitUsage},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
