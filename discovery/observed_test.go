package discovery

import (
	"fmt"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func obsAddr(t *testing.T, ipPort string) ma.Multiaddr {
	t.Helper()
	ap, err := parseOverlay(ipPort)
	if err != nil {
		t.Fatal(err)
	}
	a, err := quicMultiaddr(ap)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestObservationsMapping(t *testing.T) {
	for _, tc := range []struct {
		name string
		obs  [][2]string // observer, observed
		want Mapping
		n    int // distinct addresses
	}{
		{"none", nil, MappingUnknown, 0},
		{"one observer", [][2]string{{"11.0.100.2:4242", "11.0.1.2:4242"}}, MappingUnknown, 1},
		{"two agree", [][2]string{{"11.0.100.2:4242", "11.0.1.2:4242"}, {"11.0.101.2:4242", "11.0.1.2:4242"}}, MappingIndependent, 1},
		{"two differ", [][2]string{{"11.0.100.2:4242", "11.0.1.2:30001"}, {"11.0.101.2:4242", "11.0.1.2:30002"}}, MappingDependent, 2},
		{"one observer twice", [][2]string{{"11.0.100.2:4242", "11.0.1.2:30001"}, {"11.0.100.2:4242", "11.0.1.2:30002"}}, MappingUnknown, 1},
		{"private observer ignored", [][2]string{{"11.0.100.2:4242", "11.0.1.2:4242"}, {"10.0.0.5:4242", "11.0.1.2:5555"}}, MappingUnknown, 1},
		{"private observed ignored", [][2]string{{"11.0.100.2:4242", "11.0.1.2:4242"}, {"11.0.101.2:4242", "10.1.0.100:4242"}}, MappingUnknown, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newObservations()
			for _, ob := range tc.obs {
				o.add(obsAddr(t, ob[0]), obsAddr(t, ob[1]))
			}
			if got := o.mapping(); got != tc.want {
				t.Errorf("mapping %v, want %v", got, tc.want)
			}
			if got := len(o.addrs()); got != tc.n {
				t.Errorf("%d addresses %v, want %d", got, o.addrs(), tc.n)
			}
		})
	}
}

func TestObservationsBounded(t *testing.T) {
	o := newObservations()
	for i := range 3 * maxObservers {
		o.add(obsAddr(t, fmt.Sprintf("11.0.%d.2:4242", i)), obsAddr(t, fmt.Sprintf("11.0.1.2:%d", 20000+i)))
	}
	if n := len(o.addrs()); n != maxObservers {
		t.Fatalf("%d observations kept, want %d", n, maxObservers)
	}
	// The newest stay.
	if !ma.Contains(o.addrs(), obsAddr(t, fmt.Sprintf("11.0.1.2:%d", 20000+3*maxObservers-1))) {
		t.Fatalf("newest observation dropped: %v", o.addrs())
	}
}

func TestAddrsMapping(t *testing.T) {
	one := []ma.Multiaddr{obsAddr(t, "11.0.2.2:4242")}
	if m := addrsMapping(one); m != MappingUnknown {
		t.Errorf("one address: %v", m)
	}
	two := []ma.Multiaddr{obsAddr(t, "11.0.2.2:31000"), obsAddr(t, "11.0.2.2:42000")}
	if m := addrsMapping(two); m != MappingDependent {
		t.Errorf("one IP, two ports: %v", m)
	}
}

func TestLastLine(t *testing.T) {
	in := "failed to dial: failed to dial 12D3KooW: all dials failed\n  * [/ip4/11.0.2.2/udp/4242/quic-v1] timeout: no recent network activity"
	if got, want := lastLine(in), "timeout: no recent network activity"; got != want {
		t.Errorf("lastLine = %q, want %q", got, want)
	}
	if got := lastLine("stream reset"); got != "stream reset" {
		t.Errorf("lastLine of one line = %q", got)
	}
}
