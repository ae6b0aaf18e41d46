// Package shoalfx wires a Shoal application with go.uber.org/fx. The core
// packages never import fx; this package only calls their constructors.
//
//	fx.New(
//		shoalfx.Module, // config + app
//		shoalfx.ConfigOptions(config.WithApplicationName("greeter")),
//		shoalfx.Triple([]tri.Export{{Desc: &greettriple.GreetService_ServiceDesc, Impl: impl}}, nil),
//		shoalfx.ClientFilter(filter.Client{Name: "auth", Order: 10, Unary: auth}),
//	)
//
// [ConfigModule] provides the *config.Config loaded by config.Load with the
// options given to [ConfigOptions], in their order. [AppModule] provides
// the *app.App and hooks its Start and Stop into the fx lifecycle, after
// the hooks of whatever it depends on. Plug-ins come in through value
// groups: client and server filters (ordered by their explicit Order field,
// or by the configuration's list, never by the group's order, which fx does
// not define), registry builders, balancers and routing engines. Constructors take
// Params structs (fx.In) and return Result structs (fx.Out), so fields can
// be added without breaking users. A *slog.Logger is used if the graph has
// one; this package does not provide one.
//
// References are created when the app starts: get them with
// (*app.App).Reference from an OnStart hook of your own, which fx runs after
// the app's because your component depends on *app.App.
package shoalfx
