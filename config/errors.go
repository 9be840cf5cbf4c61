package config

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound: a config file named explicitly (a --config flag or $P2PD_CONFIG) does not exist.
	ErrNotFound = errors.New("config file not found")
	// ErrExists: WriteInitial will not overwrite a file.
	ErrExists = errors.New("config file already exists")
	// ErrSyntax: the file is not valid TOML.
	ErrSyntax = errors.New("invalid TOML")
	// ErrUnknownKey: the file has a key the schema does not know.
	ErrUnknownKey = errors.New("unknown key")
	// ErrType: a value has the wrong TOML type, or an environment value does not parse.
	ErrType = errors.New("wrong type")
	// ErrInvalid: a value has the right type but fails validation.
	ErrInvalid = errors.New("invalid value")
)

// UnknownKeyError is a key in the file that the schema does not know.
type UnknownKeyError struct {
	File       string // the config file, as given to Load
	Key        string // dotted path with array indices: "peers[1].adress"
	Suggestion string // the closest known key at that place, or ""
}

func (e *UnknownKeyError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	fmt.Fprintf(&b, "unknown key %q", e.Key)
	if e.Suggestion != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", e.Suggestion)
	}
	return b.String()
}

// Unwrap lets errors.Is match ErrUnknownKey.
func (e *UnknownKeyError) Unwrap() error { return ErrUnknownKey }

// KeyError is a value that has the wrong type or fails validation.
type KeyError struct {
	Key   string // dotted path with array indices: "services[2].target"
	Value string // the offending value as written (already quoted if a string), or ""
	Env   string // the environment variable that set the value, or ""
	Msg   string // what is wrong and how to fix it
	Err   error  // ErrType or ErrInvalid
}

func (e *KeyError) Error() string {
	var b strings.Builder
	b.WriteString("config: " + e.Key)
	if e.Value != "" {
		b.WriteString(" " + e.Value)
	}
	if e.Env != "" {
		b.WriteString(" (set by " + e.Env + ")")
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Unwrap lets errors.Is match ErrType or ErrInvalid.
func (e *KeyError) Unwrap() error { return e.Err }

// problems collects every error found in one pass.
type problems []error

func (p *problems) invalid(key, value, format string, args ...any) {
	*p = append(*p, &KeyError{Key: key, Value: value, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid})
}

func (p *problems) wrongType(key string, got any, want string) {
	*p = append(*p, &KeyError{Key: key, Msg: "want " + want + ", got " + describe(got), Err: ErrType})
}

// quote renders a string value for a message.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}
