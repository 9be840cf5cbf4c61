package config

import (
	"sort"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// locate finds where data, which parses as TOML but does not decode, goes
// wrong. go-toml reports a table, array of tables or key defined twice
// ("table node already exists", "key name is already defined") with no
// position. Decoding stops at the first bad expression, so locate decodes
// ever longer prefixes of data, each cut where an expression starts, and
// returns the line and column of the first expression whose prefix fails
// (a binary search: a few decodes even for a large file). ok is false when
// data does not parse, or every prefix decodes.
func locate(data []byte) (line, col int, ok bool) {
	var p unstable.Parser
	p.Reset(data)
	var starts []unstable.Position // where each expression's key starts
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.KeyValue, unstable.Table, unstable.ArrayTable:
		default:
			continue
		}
		if it := e.Key(); it.Next() {
			starts = append(starts, p.Shape(it.Node().Raw).Start)
		}
	}
	if p.Error() != nil {
		return 0, 0, false
	}
	i := sort.Search(len(starts), func(i int) bool {
		end := len(data)
		if i+1 < len(starts) {
			end = lineOffset(data, starts[i+1].Line)
		}
		var m map[string]any
		return toml.Unmarshal(data[:end], &m) != nil
	})
	if i == len(starts) {
		return 0, 0, false
	}
	return starts[i].Line, starts[i].Column, true
}
