package cli

import (
	"context"
	"log/slog"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp"
)

// openAMQP opens RabbitMQ through broker/amqp: the default OpenFunc.
func openAMQP(ctx context.Context, url string, logger *slog.Logger) (broker.Broker, error) {
	b, err := amqp.Open(ctx, amqp.Config{URL: url, Logger: logger})
	if err != nil {
		return nil, err
	}
	return b, nil
}
