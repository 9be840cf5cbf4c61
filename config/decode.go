package config

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/viper"
)

// decoder moves values from viper into a Config, checking names and types against schema.
type decoder struct {
	v    *viper.Viper
	raw  map[string]any // the file's settings only, before environment bindings
	file string         // for unknown-key messages
	c    *Config
	p    problems
	env  map[string]string // key -> environment variable that set it
}

func (d *decoder) decode() {
	for _, k := range sortedKeys(d.raw) {
		if !slices.Contains(sectionNames(), k) {
			d.unknown(k, suggest(k, sectionNames()))
		}
	}
	for _, s := range schema {
		if s.array {
			d.array(s)
		} else {
			d.table(s)
		}
	}
}

func (d *decoder) unknown(key, suggestion string) {
	d.p = append(d.p, &UnknownKeyError{File: d.file, Key: key, Suggestion: suggestion})
}

// unknownIn reports the keys of table m (at path prefix) that section s does not have.
func (d *decoder) unknownIn(prefix string, m map[string]any, s section) {
	names := s.fieldNames()
	for _, k := range sortedKeys(m) {
		if !slices.Contains(names, k) {
			d.unknown(prefix+"."+k, suggest(k, names))
		}
	}
}

// table decodes a plain table such as [node]; its keys may come from the environment.
func (d *decoder) table(s section) {
	if raw, ok := d.raw[s.name]; ok {
		if m, ok := raw.(map[string]any); ok {
			d.unknownIn(s.name, m, s)
		} else {
			d.p.wrongType(s.name, raw, "a table ["+s.name+"]")
		}
	}
	for _, f := range s.fields {
		key := s.name + "." + f.name
		if name := envName(key); os.Getenv(name) != "" {
			d.env[key] = name
			d.fromEnv(f, key, name)
			continue
		}
		m, ok := d.raw[s.name].(map[string]any)
		if !ok {
			continue
		}
		val, ok := m[f.name]
		if !ok {
			continue
		}
		d.set(f, key, 0, val)
	}
}

// fromEnv decodes the text of the environment variable name, read through viper (which has
// it bound, see bindEnv) so that viper stays the one place that layers the sources.
func (d *decoder) fromEnv(f field, key, name string) {
	text := fmt.Sprint(d.v.Get(key))
	var val any
	switch f.kind {
	case kindString:
		val = text
	case kindBool:
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			d.p = append(d.p, &KeyError{Key: key, Value: quote(text), Env: name,
				Msg: "want true or false", Err: ErrType})
			return
		}
		val = b
	case kindInt:
		n, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			d.p = append(d.p, &KeyError{Key: key, Value: quote(text), Env: name,
				Msg: "want an integer", Err: ErrType})
			return
		}
		val = n
	case kindList:
		items := []string{}
		for _, it := range strings.Split(text, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		val = items
	}
	if err := f.set(d.c, 0, val); err != nil {
		d.p = append(d.p, &KeyError{Key: key, Value: quote(text), Env: name, Msg: err.Error(), Err: ErrInvalid})
	}
}

// array decodes an array of tables such as [[peers]]; the file is its only source.
func (d *decoder) array(s section) {
	raw, ok := d.raw[s.name]
	if !ok {
		return
	}
	var items []any
	switch x := raw.(type) {
	case []any:
		items = x
	case []map[string]any:
		for _, m := range x {
			items = append(items, m)
		}
	default:
		d.p.wrongType(s.name, raw, "an array of tables [["+s.name+"]]")
		return
	}
	s.alloc(d.c, len(items))
	for i, it := range items {
		prefix := fmt.Sprintf("%s[%d]", s.name, i)
		m, ok := it.(map[string]any)
		if !ok {
			d.p.wrongType(prefix, it, "a table [["+s.name+"]]")
			continue
		}
		d.unknownIn(prefix, m, s)
		for _, f := range s.fields {
			if val, ok := m[f.name]; ok {
				d.set(f, prefix+"."+f.name, i, val)
			}
		}
	}
}

// set checks that a file value has the field's type and stores it.
func (d *decoder) set(f field, key string, i int, val any) {
	typed, ok := ofKind(f.kind, val)
	if !ok {
		d.p.wrongType(key, val, f.want)
		return
	}
	if err := f.set(d.c, i, typed); err != nil {
		d.p.invalid(key, describe(val), "%s", err.Error())
	}
}

// ofKind converts a decoded TOML value to the Go type of kind k, if it has that type.
func ofKind(k kind, v any) (any, bool) {
	switch k {
	case kindString:
		s, ok := v.(string)
		return s, ok
	case kindBool:
		b, ok := v.(bool)
		return b, ok
	case kindInt:
		switch x := v.(type) {
		case int64:
			if int64(int(x)) == x {
				return int(x), true
			}
		case int:
			return x, true
		}
		return nil, false
	case kindList:
		switch x := v.(type) {
		case []string:
			return append([]string{}, x...), true
		case []any:
			out := make([]string, 0, len(x))
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, false
				}
				out = append(out, s)
			}
			return out, true
		}
	}
	return nil, false
}
