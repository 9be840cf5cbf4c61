package discovery

import (
	"context"
	"fmt"
	"reflect"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// dhtRequestTimeout bounds one DHT request to one peer: opening the
// stream (dialing the peer when needed), writing the request and reading
// the answer. kad-dht waits 10 s for an answer, then retries once on a new
// stream, so a peer that died with its connection still open held every
// lookup that asked it for 20 s (a dead bootstrap node, typically). A
// request that runs out of time makes kad-dht drop the peer from its
// routing table, as it does for a failed dial; a live peer that answers
// later is added again.
const dhtRequestTimeout = 3 * time.Second

// senderBuilder is the type of kad-dht's Config.MsgSenderBuilder.
type senderBuilder = func(host.Host, []protocol.ID) pb.MessageSenderWithDisconnect

// requestTimeout returns a DHT option that wraps kad-dht's own message
// sender (set by its defaults, which apply before any option) so that
// every request ends within d. kad-dht takes a custom sender but not a
// timeout, and its config type is internal, so the option reaches the
// field by name; TestRequestTimeoutOption fails if the field goes away.
func requestTimeout(d time.Duration) (dht.Option, error) {
	t := reflect.TypeFor[dht.Option]()
	cfg := t.In(0)
	if cfg.Kind() != reflect.Pointer || cfg.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("discovery: dht: kad-dht's option takes %v, not a config struct", cfg)
	}
	field, ok := cfg.Elem().FieldByName("MsgSenderBuilder")
	if !ok || field.Type != reflect.TypeFor[senderBuilder]() {
		return nil, fmt.Errorf("discovery: dht: kad-dht's config has no MsgSenderBuilder of type %v", reflect.TypeFor[senderBuilder]())
	}
	fn := reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		f := args[0].Elem().FieldByIndex(field.Index)
		inner, _ := f.Interface().(senderBuilder)
		var err error
		if inner == nil {
			err = fmt.Errorf("discovery: dht: kad-dht set no message sender before the options")
		} else {
			f.Set(reflect.ValueOf(senderBuilder(func(h host.Host, protos []protocol.ID) pb.MessageSenderWithDisconnect {
				return timedSender{MessageSenderWithDisconnect: inner(h, protos), timeout: d}
			})))
		}
		return []reflect.Value{reflect.ValueOf(&err).Elem()}
	})
	return fn.Interface().(dht.Option), nil
}

// timedSender is kad-dht's message sender with each request bounded.
type timedSender struct {
	pb.MessageSenderWithDisconnect
	timeout time.Duration
}

func (s timedSender) SendRequest(ctx context.Context, p peer.ID, m *pb.Message) (*pb.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.MessageSenderWithDisconnect.SendRequest(ctx, p, m)
}

func (s timedSender) SendMessage(ctx context.Context, p peer.ID, m *pb.Message) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.MessageSenderWithDisconnect.SendMessage(ctx, p, m)
}
