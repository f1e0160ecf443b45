package memory_test

import (
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/brokertest"
	"github.com/warrenjobs/warren/broker/memory"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return memory.New(memory.Config{})
	}, brokertest.Features{DelayTolerance: 250 * time.Millisecond})
}
