package authkit

import (
	"io"
	"log/slog"
	"os"
)

// eventLog writes one JSON line per event to standard error, where Traefik
// passes it through whatever its log level: the proxy's form of authkit's
// onSessionRefreshSuccess / onSessionRefreshError callbacks. Debug lines
// appear only with debug: true. Callers log ids and reasons, never a token,
// cookie, code or secret.
type eventLog struct {
	logger *slog.Logger
}

func newEventLog(middleware string, debug bool, out io.Writer) *eventLog {
	if out == nil {
		out = os.Stderr
	}
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if debug {
		opts.Level = slog.LevelDebug
	}
	logger := slog.New(slog.NewJSONHandler(out, opts)).With("plugin", "traefik-authkit", "middleware", middleware)
	return &eventLog{logger: logger}
}

func (l *eventLog) event(name string, attrs ...any) { l.logger.Info(name, attrs...) }

func (l *eventLog) debug(message string, attrs ...any) { l.logger.Debug(message, attrs...) }
