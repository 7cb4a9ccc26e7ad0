// Command invoice-reminder is the invoice-reminder Lambda function (see shared/function).
package main

import "github.com/dueflow/dueflow/shared/function"

func main() { function.Main("invoice-reminder") }
