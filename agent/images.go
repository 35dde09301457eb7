package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/agent/runtime/containerd"
	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// imageResolveTimeout bounds how long a missing image is looked for on the
// other agents before the registry is tried.
const imageResolveTimeout = 5 * time.Second

// imagePeers finds images on the other agents for the containerd driver
// (containerd.Peers): the alive members are asked at once through their
// gRPC API, and the first that holds the image serves its blobs.
type imagePeers struct {
	self    string
	members func() []gossip.Member
	// dial returns a client of the agent at a gRPC address.
	dial    func(addr string) (pb.ShoalClient, error)
	timeout time.Duration
}

var _ containerd.Peers = (*imagePeers)(nil)

// imagePeers asks the agent's fellow members, over the API server's
// connections. The server is made after the driver, and is there before
// any pod starts.
func (a *Agent) imagePeers() *imagePeers {
	return &imagePeers{
		self:    a.cfg.Name,
		members: a.mesh.Members,
		dial: func(addr string) (pb.ShoalClient, error) {
			if a.api == nil {
				return nil, errors.New("the agent's API is not up yet")
			}
			return a.api.AgentClient(addr)
		},
		timeout: imageResolveTimeout,
	}
}

// ResolveImage asks every alive member but this one for ref and returns
// the first that holds it; the other questions are then cancelled.
func (p *imagePeers) ResolveImage(ctx context.Context, ref string) (containerd.Peer, ocispec.Descriptor, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	type answer struct {
		peer apiserver.ImagePeer
		desc ocispec.Descriptor
		err  error
	}
	members := p.members()
	answers := make(chan answer, len(members))
	var errs []error
	asked := 0
	for _, m := range members {
		addr := m.Meta.GetGrpcAddress()
		if m.Name == p.self || !m.IsAlive() || addr == "" {
			continue
		}
		c, err := p.dial(addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", m.Name, err))
			continue
		}
		asked++
		peer := apiserver.ImagePeer{Node: m.Name, Client: c}
		wg.Go(func() {
			desc, err := peer.ResolveImage(ctx, ref)
			answers <- answer{peer, desc, err}
		})
	}
	for range asked {
		a := <-answers
		if a.err == nil {
			return a.peer, a.desc, nil
		}
		if status.Code(a.err) != codes.NotFound {
			errs = append(errs, a.err)
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		return nil, ocispec.Descriptor{}, fmt.Errorf("image %s: no peer answered with it (%d asked): %s", ref, asked, strings.Join(msgs, "; "))
	}
	return nil, ocispec.Descriptor{}, fmt.Errorf("image %s: none of %d peers holds it: %w", ref, asked, errdefs.ErrNotFound)
}
