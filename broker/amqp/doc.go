// Package amqp is warren's broker on RabbitMQ 3.10+ through amqp091-go.
package amqp
