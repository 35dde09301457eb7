package gossip

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"
)

// newMemberlistLogger returns a *log.Logger (what memberlist accepts) that
// forwards memberlist's lines to l with a level read from their prefix.
//
// memberlist's [DEBUG] and [INFO] lines are chatty (every stream connection,
// every suspicion) and go to Debug, so the mesh is quiet by default; the
// mesh logs membership changes itself at Info. [WARN] and [ERR] lines go to
// Warn: memberlist's errors are about reaching peers (a failed push/pull, a
// refused probe), which is expected while a node is dying, not a fault of
// this agent. Once quiet is set (on Shutdown), every line goes to Debug:
// memberlist's goroutines complain about the closed sockets while they exit.
func newMemberlistLogger(l *slog.Logger, quiet *atomic.Bool) *log.Logger {
	return log.New(memberlistWriter{l: l.With("component", "memberlist"), quiet: quiet}, "", 0)
}

type memberlistWriter struct {
	l     *slog.Logger
	quiet *atomic.Bool // may be nil
}

func (w memberlistWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	for _, pre := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelDebug},
		{"[WARN]", slog.LevelWarn},
		{"[ERR]", slog.LevelWarn},
		{"[ERROR]", slog.LevelWarn},
	} {
		if rest, ok := strings.CutPrefix(msg, pre.prefix); ok {
			level, msg = pre.level, strings.TrimSpace(rest)
			break
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	if w.quiet != nil && w.quiet.Load() {
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
