// Package adsprobe talks to istiod over ADS as a proxyless gRPC client does
// (node metadata GENERATOR=grpc), to check readiness and to read what istiod
// serves in tests: endpoints, route weights, clusters. Its API uses plain Go
// values, not Envoy types.
package adsprobe

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// Type URLs of the resources a proxyless client asks for.
const (
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
)

// Client is one ADS stream to istiod.
type Client struct {
	conn   *grpc.ClientConn
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	cancel context.CancelFunc
	node   *core.Node
	nonces map[string]string
}

// Dial opens an ADS stream to addr as a proxyless client in namespace ns.
func Dial(_ context.Context, addr, ns string) (*Client, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		cancel()
		_ = conn.Close()
		return nil, err
	}
	md, _ := structpb.NewStruct(map[string]any{"GENERATOR": "grpc", "NAMESPACE": ns, "CLUSTER_ID": "Kubernetes", "ISTIO_VERSION": "1.29.0"})
	return &Client{
		conn: conn, stream: stream, cancel: cancel, nonces: map[string]string{},
		node: &core.Node{Id: "sidecar~127.0.0.1~adsprobe." + ns + "~" + ns + ".svc.cluster.local", Metadata: md},
	}, nil
}

// Close ends the stream.
func (c *Client) Close() {
	c.cancel()
	_ = c.conn.Close()
}

// Fetch subscribes to names of typeURL and returns the first response with
// at least one resource, ACKing every response on the way.
func (c *Client) Fetch(ctx context.Context, typeURL string, names []string) (*discovery.DiscoveryResponse, error) {
	return c.fetch(ctx, typeURL, names, 1)
}

func (c *Client) fetch(ctx context.Context, typeURL string, names []string, minResources int) (*discovery.DiscoveryResponse, error) {
	if err := c.stream.Send(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: typeURL, ResourceNames: names, ResponseNonce: c.nonces[typeURL]}); err != nil {
		return nil, err
	}
	type result struct {
		r   *discovery.DiscoveryResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		for {
			r, err := c.stream.Recv()
			if err != nil {
				ch <- result{nil, err}
				return
			}
			c.nonces[r.GetTypeUrl()] = r.GetNonce()
			_ = c.stream.Send(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: r.GetTypeUrl(), ResourceNames: names, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()})
			if r.GetTypeUrl() == typeURL && len(r.GetResources()) >= minResources {
				ch <- result{r, nil}
				return
			}
		}
	}()
	select {
	case res := <-ch:
		return res.r, res.err
	case <-ctx.Done():
		c.cancel() // the reader goroutine ends with the stream
		<-ch
		return nil, ctx.Err()
	}
}

// Ping opens a stream to addr and waits for an answer to a CDS request, even
// an empty one: istiod's real readiness (its /ready stays 503 outside a
// cluster).
func Ping(ctx context.Context, addr string) error {
	c, err := Dial(ctx, addr, "default")
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.fetch(ctx, ClusterType, []string{"outbound|15010||istiod.istio-system.svc.cluster.local"}, 0)
	return err
}

// Endpoints returns the sorted addresses (ip:port) of an EDS cluster, e.g.
// "outbound|20000|v1|greeter.default.svc.cluster.local".
func (c *Client) Endpoints(ctx context.Context, clusterName string) ([]string, error) {
	r, err := c.Fetch(ctx, EndpointType, []string{clusterName})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range r.GetResources() {
		var cla endpoint.ClusterLoadAssignment
		if err := a.UnmarshalTo(&cla); err != nil {
			return nil, err
		}
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				sa := e.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, sa.GetAddress()+":"+strconv.Itoa(int(sa.GetPortValue())))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Clusters returns the names of all clusters istiod sends this client.
func (c *Client) Clusters(ctx context.Context) ([]string, error) {
	r, err := c.Fetch(ctx, ClusterType, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range r.GetResources() {
		var cl cluster.Cluster
		if err := a.UnmarshalTo(&cl); err != nil {
			return nil, err
		}
		out = append(out, cl.GetName())
	}
	sort.Strings(out)
	return out, nil
}

// RouteWeights returns cluster -> weight of the first route of an RDS route
// configuration such as "outbound|20000||greeter.default.svc.cluster.local",
// with the response's version.
func (c *Client) RouteWeights(ctx context.Context, routeName string) (map[string]uint32, string, error) {
	r, err := c.Fetch(ctx, RouteType, []string{routeName})
	if err != nil {
		return nil, "", err
	}
	for _, a := range r.GetResources() {
		var rc route.RouteConfiguration
		if err := a.UnmarshalTo(&rc); err != nil {
			return nil, "", err
		}
		for _, vh := range rc.GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				out := map[string]uint32{}
				if wc := rt.GetRoute().GetWeightedClusters(); wc != nil {
					for _, cw := range wc.GetClusters() {
						out[cw.GetName()] = cw.GetWeight().GetValue()
					}
				} else if name := rt.GetRoute().GetCluster(); name != "" {
					out[name] = 100
				}
				return out, r.GetVersionInfo(), nil
			}
		}
	}
	return nil, r.GetVersionInfo(), fmt.Errorf("adsprobe: route %s has no route", routeName)
}

// WaitRouteWeights polls RouteWeights on fresh streams until want holds or
// ctx ends; it returns how long that took.
func WaitRouteWeights(ctx context.Context, addr, ns, routeName string, want map[string]uint32) (time.Duration, error) {
	start := time.Now()
	var last map[string]uint32
	for ctx.Err() == nil {
		c, err := Dial(ctx, addr, ns)
		if err != nil {
			return 0, err
		}
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, _, err := c.RouteWeights(fctx, routeName)
		cancel()
		c.Close()
		if err == nil {
			last = got
			if equal(got, want) {
				return time.Since(start), nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("adsprobe: route %s weights %v, want %v: %w", routeName, last, want, ctx.Err())
}

func equal(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
