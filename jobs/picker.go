package jobs

import (
	"context"
	"math/rand/v2"
	"reflect"

	"github.com/warrenjobs/warren/broker"
)

// picker takes the next delivery from several subscriptions, preferring
// queues by weight when more than one has a delivery ready.
type picker struct {
	subs    []broker.Subscription
	weights []int
	total   int
	cases   []reflect.SelectCase
}

func newPicker(subs []broker.Subscription, weights []int) *picker {
	p := &picker{subs: subs, weights: weights}
	for _, w := range weights {
		p.total += w
	}
	p.cases = make([]reflect.SelectCase, len(subs)+1)
	for i, s := range subs {
		p.cases[i+1] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.Deliveries())}
	}
	return p
}

// next returns a delivery, or ok=false when ctx is done (sub nil) or a
// subscription's channel closed (sub set).
func (p *picker) next(ctx context.Context) (d broker.Delivery, sub broker.Subscription, ok bool) {
	if len(p.subs) == 1 {
		select {
		case d, ok := <-p.subs[0].Deliveries():
			if !ok {
				return nil, p.subs[0], false
			}
			return d, nil, true
		case <-ctx.Done():
			return nil, nil, false
		}
	}
	// Try queues in a weighted random order without blocking.
	start := p.weightedIndex()
	for i := range p.subs {
		s := p.subs[(start+i)%len(p.subs)]
		select {
		case d, ok := <-s.Deliveries():
			if !ok {
				return nil, s, false
			}
			return d, nil, true
		default:
		}
	}
	// Nothing ready: wait for whichever comes first.
	p.cases[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}
	i, v, ok := reflect.Select(p.cases)
	if i == 0 {
		return nil, nil, false
	}
	if !ok {
		return nil, p.subs[i-1], false
	}
	return v.Interface().(broker.Delivery), nil, true
}

func (p *picker) weightedIndex() int {
	n := rand.IntN(p.total)
	for i, w := range p.weights {
		if n < w {
			return i
		}
		n -= w
	}
	return 0
}
