package apiserver

import (
	"context"
	"errors"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/state"
)

// notLeaderMsg marks a refusal that guarantees nothing was done, so a
// forwarder may retry on the new leader.
const notLeaderMsg = "not the raft leader"

// toStatus maps store, Raft and runtime (containerd errdefs) errors to gRPC
// codes: the one place where that mapping lives.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, state.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, state.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, state.ErrConflict):
		code = codes.Aborted
	case errors.Is(err, state.ErrRefused):
		code = codes.FailedPrecondition
	case errors.Is(err, state.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, state.ErrCompacted):
		code = codes.OutOfRange
	case errors.Is(err, consensus.ErrNotLeader):
		return status.Error(codes.Unavailable, notLeaderMsg+": "+err.Error())
	case errors.Is(err, consensus.ErrUnknownOutcome):
		code = codes.Unknown
	case errdefs.IsNotFound(err):
		code = codes.NotFound // the runtime's: an image or blob
	case errdefs.IsInvalidArgument(err):
		code = codes.InvalidArgument
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	default:
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}
