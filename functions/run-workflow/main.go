// Command run-workflow is the run-workflow Lambda function (see shared/function).
package main

import "github.com/dueflow/dueflow/shared/function"

func main() { function.Main("run-workflow") }
