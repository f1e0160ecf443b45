package jobs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/jobs"
)

func TestWorkersDecodeArgs(t *testing.T) {
	t.Parallel()
	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, jobs.WorkFunc(func(context.Context, *jobs.Job[shapeArgs]) error { return nil }))

	args, err := workers.DecodeArgs("test.shape", []byte(`{"n": 7}`))
	require.NoError(t, err)
	require.Equal(t, shapeArgs{N: 7}, args)

	_, err = workers.DecodeArgs("test.nope", []byte(`{}`))
	require.ErrorIs(t, err, jobs.ErrUnknownKind)
	require.ErrorContains(t, err, `"test.nope"`)

	for name, raw := range map[string]string{
		"unknown field": `{"m": 1}`,
		"wrong type":    `{"n": "seven"}`,
		"not JSON":      `{n: 7}`,
		"trailing data": `{"n": 7} {}`,
		"empty":         ``,
	} {
		_, err := workers.DecodeArgs("test.shape", []byte(raw))
		require.Error(t, err, name)
		require.ErrorContains(t, err, `kind "test.shape"`, name)
		require.False(t, errors.Is(err, jobs.ErrUnknownKind), name)
	}
}
