package xdsstatus

import (
	"context"
	"errors"
	"io"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
)

// StatusSource is what the service reads: *xdsclient.Client implements it.
type StatusSource interface {
	Status() xdsclient.Status
}

// CSDS implements ClientStatusDiscoveryServiceServer over one or more
// xDS clients (one ClientConfig each).
type CSDS struct {
	statusv3.UnimplementedClientStatusDiscoveryServiceServer
	sources []StatusSource
}

// NewCSDS returns the service for sources.
func NewCSDS(sources ...StatusSource) *CSDS { return &CSDS{sources: sources} }

// Register adds the service to a gRPC server.
func (s *CSDS) Register(r grpc.ServiceRegistrar) {
	statusv3.RegisterClientStatusDiscoveryServiceServer(r, s)
}

// FetchClientStatus answers one request. Node matchers are not supported:
// every client's status is returned.
func (s *CSDS) FetchClientStatus(_ context.Context, _ *statusv3.ClientStatusRequest) (*statusv3.ClientStatusResponse, error) {
	return s.response(), nil
}

// StreamClientStatus answers every request on the stream.
func (s *CSDS) StreamClientStatus(stream statusv3.ClientStatusDiscoveryService_StreamClientStatusServer) error {
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.Send(s.response()); err != nil {
			return err
		}
	}
}

func (s *CSDS) response() *statusv3.ClientStatusResponse {
	resp := &statusv3.ClientStatusResponse{}
	for _, src := range s.sources {
		resp.Config = append(resp.Config, ClientConfig(src.Status()))
	}
	return resp
}

// ClientConfig translates one xDS client's status into CSDS's ClientConfig.
func ClientConfig(st xdsclient.Status) *statusv3.ClientConfig {
	cc := &statusv3.ClientConfig{Node: &corev3.Node{Id: st.NodeID}}
	for _, ts := range st.Types {
		for _, rs := range ts.Resources {
			g := &statusv3.ClientConfig_GenericXdsConfig{
				TypeUrl:      ts.Type.URL(),
				Name:         rs.Name,
				VersionInfo:  rs.Version,
				ClientStatus: clientStatus(rs.State),
				ConfigStatus: statusv3.ConfigStatus_SYNCED,
			}
			if !rs.UpdatedAt.IsZero() {
				g.LastUpdated = timestamppb.New(rs.UpdatedAt)
			}
			switch rs.State {
			case xdsclient.StateNACKed:
				g.ConfigStatus = statusv3.ConfigStatus_ERROR
				g.ErrorState = &adminv3.UpdateFailureState{Details: rs.Error, VersionInfo: ts.LastNACKVersion}
				if !ts.LastErrorAt.IsZero() {
					g.ErrorState.LastUpdateAttempt = timestamppb.New(ts.LastErrorAt)
				}
			case xdsclient.StateRequested:
				g.ConfigStatus = statusv3.ConfigStatus_NOT_SENT
			}
			cc.GenericXdsConfigs = append(cc.GenericXdsConfigs, g)
		}
	}
	return cc
}

func clientStatus(s xdsclient.ResourceState) adminv3.ClientResourceStatus {
	switch s {
	case xdsclient.StateRequested:
		return adminv3.ClientResourceStatus_REQUESTED
	case xdsclient.StateACKed:
		return adminv3.ClientResourceStatus_ACKED
	case xdsclient.StateNACKed:
		return adminv3.ClientResourceStatus_NACKED
	case xdsclient.StateNotFound:
		return adminv3.ClientResourceStatus_DOES_NOT_EXIST
	}
	return adminv3.ClientResourceStatus_UNKNOWN
}
