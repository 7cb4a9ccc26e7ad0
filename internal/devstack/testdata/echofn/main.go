// Command echofn is a test Lambda function behind a Function URL: it echoes
// the event it received, and crashes, fails or sleeps on request.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	switch ev.RawPath {
	case "/crash":
		os.Exit(3)
	case "/error":
		return events.LambdaFunctionURLResponse{}, errors.New("handler failed")
	case "/sleep":
		time.Sleep(300 * time.Millisecond)
	}
	b, _ := json.Marshal(map[string]any{"event": ev, "env": os.Getenv("ECHO_ENV"), "pid": os.Getpid()})
	return events.LambdaFunctionURLResponse{
		StatusCode: 201,
		Headers:    map[string]string{"Content-Type": "application/json", "X-Echo": "yes"},
		Body:       string(b),
	}, nil
}

func main() { lambda.Start(handle) }
