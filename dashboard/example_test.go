package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/dashboard"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/jobs"
)

type sendEmail struct {
	To string `json:"to"`
}

func (sendEmail) Kind() string { return "email.send" }

// The dashboard mounted under /warren/ in an existing server, answering its
// JSON API.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := memory.New(memory.Config{}) // in production: amqp.Open
	defer b.Close()

	d, err := dashboard.New(dashboard.Config{Broker: b, Queues: []string{"emails"}})
	if err != nil {
		panic(err)
	}
	go d.Run(ctx) // follow the events log

	mux := http.NewServeMux()
	mux.Handle("/warren/", http.StripPrefix("/warren", d))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client, _ := jobs.NewClient(b, nil)
	defer client.Close(ctx)
	_, _ = client.Enqueue(ctx, sendEmail{To: "a@example.com"}, &jobs.EnqueueOpts{Queue: "emails"})

	resp, err := http.Get(srv.URL + "/warren/api/queues")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var qs api.Queues
	_ = json.NewDecoder(resp.Body).Decode(&qs)
	for _, q := range qs.Queues {
		fmt.Printf("%s: %d ready, %d dead\n", q.Name, q.Ready, q.Dead)
	}
	// Output: emails: 1 ready, 0 dead
}
