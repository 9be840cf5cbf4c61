package config

import (
	"errors"
	"slices"
	"testing"
)

// forwardsWithMax is two valid forwards; the second's max_connections line is line.
func forwardsWithMax(line string) string {
	return twoPeers + "[[forwards]]\nlisten = \"1\"\npeer = \"db\"\nservice = \"pg\"\n" +
		"[[forwards]]\nlisten = \"2\"\npeer = \"db\"\nservice = \"pg\"\n" + line
}

func TestForwardMaxConnections(t *testing.T) {
	for _, tt := range []struct {
		line string
		want int
	}{
		{"", 0}, // absent: the proxy applies its default
		{"max_connections = 0\n", 0},
		{"max_connections = 1\n", 1},
		{"max_connections = 4096\n", 4096},
		{"max_connections = 1048576\n", 1 << 20},
	} {
		isolate(t)
		c, err := loadString(t, forwardsWithMax(tt.line))
		if err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		if got := c.Forwards[1].MaxConnections; got != tt.want || c.Forwards[0].MaxConnections != 0 {
			t.Errorf("%q: MaxConnections = %d, %d; want 0, %d", tt.line, c.Forwards[0].MaxConnections, got, tt.want)
		}
	}
}

func TestForwardMaxConnectionsInvalid(t *testing.T) {
	for _, tt := range []struct {
		line, want string
		is         error
	}{
		{"max_connections = -5\n",
			`config: forwards[1].max_connections -5: must be between 1 and 1048576; absent or 0 means the default, 8192`, ErrInvalid},
		{"max_connections = 1048577\n",
			`config: forwards[1].max_connections 1048577: must be between 1 and 1048576; absent or 0 means the default, 8192`, ErrInvalid},
		{"max_connections = \"100\"\n", `config: forwards[1].max_connections: want an integer, got "100"`, ErrType},
		{"max_connections = 1.5\n", `config: forwards[1].max_connections: want an integer, got 1.5`, ErrType},
	} {
		isolate(t)
		_, err := loadString(t, forwardsWithMax(tt.line))
		if !errors.Is(err, tt.is) {
			t.Errorf("%q: err = %v, want %v", tt.line, err, tt.is)
		}
		if got := messages(err); !slices.Equal(got, []string{tt.want}) {
			t.Errorf("%q:\ngot  %q\nwant %q", tt.line, got, tt.want)
		}
	}
}
