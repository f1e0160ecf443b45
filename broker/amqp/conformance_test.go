package amqp

import (
	"context"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
	"github.com/warrenjobs/warren/broker/brokertest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	url := amqptest.URL(t)
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := Open(ctx, Config{URL: url, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	}, brokertest.Features{DelayTolerance: time.Second})
}
