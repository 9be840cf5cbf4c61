package discovery

import (
	"context"
	"log/slog"
	"os"
	"sort"
	"strings"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"go.uber.org/zap/zapcore"
)

// RouteLibp2pLogs sends the logs of libp2p and its DHT through h, so that a
// daemon's log has one format: go-libp2p's own loggers (gologshim, slog)
// and go-libp2p-kad-dht's (ipfs/go-log, zap) otherwise write their own JSON
// or colored lines to stderr. Each message carries logger=<subsystem>.
//
// libp2p logs a great deal below warn, so its warnings and errors pass and
// nothing else, unless GOLOG_LOG_LEVEL says otherwise the way go-log reads
// it: "info" for every subsystem, "warn,dht=debug,mdns=info" per subsystem.
// h's own level applies on top.
//
// The routing is global to the process and applies to each logger from its
// first message on: call it once, before the host starts. The daemon does;
// tests that run several nodes in one process leave libp2p's defaults.
func RouteLibp2pLogs(h slog.Handler) {
	env := os.Getenv("GOLOG_LOG_LEVEL")
	fallback, perSystem := parseLevels(env)
	gologshim.SetDefaultHandler(levelFloor{Handler: h, min: fallback, fallback: fallback, perSystem: perSystem})
	golog.SetPrimaryCore(zapToSlog{h: h}) // go-log filters by subsystem itself
	// With GOLOG_LOG_LEVEL set, go-log applied it in its init.
	if env == "" {
		_ = golog.SetLogLevel("*", slogToZap(fallback).String()) // a zap level name parses
	}
}

// parseLevels reads GOLOG_LOG_LEVEL: a fallback level and levels per
// subsystem, comma-separated ("warn,dht=debug"). Empty or unparsable parts
// leave the default, warn.
func parseLevels(env string) (slog.Level, map[string]slog.Level) {
	fallback, per := slog.LevelWarn, map[string]slog.Level{}
	for _, part := range strings.Split(env, ",") {
		system, name, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			name, system = system, ""
		}
		var lvl slog.Level
		if name == "" || lvl.UnmarshalText([]byte(name)) != nil {
			continue
		}
		if system == "" {
			fallback = lvl
		} else {
			per[system] = lvl
		}
	}
	return fallback, per
}

// levelFloor passes the records of its Handler at min and above. Once a
// logger attribute names the subsystem, min is that subsystem's level.
type levelFloor struct {
	slog.Handler
	min       slog.Level
	fallback  slog.Level
	perSystem map[string]slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lvl slog.Level) bool {
	return lvl >= l.min && l.Handler.Enabled(ctx, lvl)
}

func (l levelFloor) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < l.min {
		return nil
	}
	return l.Handler.Handle(ctx, r)
}

func (l levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	next := l
	next.Handler = l.Handler.WithAttrs(attrs)
	for _, a := range attrs {
		if a.Key == "logger" {
			next.min = l.levelFor(a.Value.String())
		}
	}
	return next
}

func (l levelFloor) WithGroup(name string) slog.Handler {
	next := l
	next.Handler = l.Handler.WithGroup(name)
	return next
}

func (l levelFloor) levelFor(system string) slog.Level {
	if lvl, ok := l.perSystem[system]; ok {
		return lvl
	}
	return l.fallback
}

// zapToSlog is a zap core that writes each entry as a slog record: the
// logger's name as logger=, zap's fields as attributes (an "error" field as
// err=, p2pd's key for it).
type zapToSlog struct{ h slog.Handler }

func (z zapToSlog) Enabled(lvl zapcore.Level) bool {
	return z.h.Enabled(context.Background(), zapToSlogLevel(lvl))
}

func (z zapToSlog) With(fields []zapcore.Field) zapcore.Core {
	return zapToSlog{h: z.h.WithAttrs(attrsOf(fields))}
}

func (z zapToSlog) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if z.Enabled(e.Level) {
		return ce.AddCore(e, z)
	}
	return ce
}

func (z zapToSlog) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, zapToSlogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(attrsOf(fields)...)
	return z.h.Handle(context.Background(), r)
}

func (zapToSlog) Sync() error { return nil }

// attrsOf turns zap fields into slog attributes, sorted by key.
func attrsOf(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		key := k
		if key == "error" {
			key = "err"
		}
		attrs = append(attrs, slog.Any(key, enc.Fields[k]))
	}
	return attrs
}

func zapToSlogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func slogToZap(l slog.Level) zapcore.Level {
	switch {
	case l <= slog.LevelDebug:
		return zapcore.DebugLevel
	case l <= slog.LevelInfo:
		return zapcore.InfoLevel
	case l <= slog.LevelWarn:
		return zapcore.WarnLevel
	default:
		return zapcore.ErrorLevel
	}
}
