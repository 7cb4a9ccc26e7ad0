// Command send-reminder is the send-reminder Lambda function (see shared/function).
package main

import "github.com/dueflow/dueflow/shared/function"

func main() { function.Main("send-reminder") }
