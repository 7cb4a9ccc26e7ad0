// Command dueflow is the local stack and operator CLI: demo, invoke, tick,
// status, register, deliveries, settle, console, executions, execution,
// retry, cancel. `dueflow help` lists the commands; `dueflow help <command>`
// or `dueflow <command> -h` explains one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// commands is the command table. Adding a command is one entry in init
// below: its summary, its usage function and its run function (help.go
// prints the help from them and from the command's flag set).
var commands = map[string]command{}

func init() {
	for name, c := range map[string]command{
		"demo":       {summary: "run the whole pipeline locally with demo data (--once: one cycle, then exit)", usage: demoUsage, run: cmdDemo},
		"invoke":     {summary: "run one function once under the Lambda RIE with a Function URL event (Docker-free sam local invoke)", usage: invokeUsage, run: cmdInvoke},
		"tick":       {summary: "run one automation cycle now (the SQL the cron jobs run)", usage: tickUsage, run: cmdTick},
		"status":     {summary: "show cron jobs, queue health and what the checks skip; exit non-zero on failures, expired leases or stuck rows", usage: statusUsage, run: cmdStatus, codes: statusCodes},
		"register":   {summary: "store deployed Function URLs in automation_endpoints and the signing secret in Vault", usage: registerUsage, run: cmdRegister},
		"deliveries": {summary: "list the deliveries whose fate is unknown (--unknown), recipients masked", usage: deliveriesUsage, run: cmdDeliveries},
		"settle":     {summary: "settle an unknown delivery as sent or not sent (automation_settle_delivery, recorded with --by)", usage: settleUsage, run: cmdSettle, codes: refusalCodes},
		"console":    {summary: "serve the operator console (executions, cron, workflows, analytics) on 127.0.0.1:54323", usage: consoleUsage, run: cmdConsole},
		"executions": {summary: "list executions (filters: --state --action --org --workflow --trigger --error --since --until), table or --json", usage: executionsUsage, run: cmdExecutions},
		"execution":  {summary: "show one execution: trigger data, deliveries and its timeline (as the console)", usage: executionUsage, run: cmdExecution},
		"retry":      {summary: "retry a failed, cancelled or skipped execution (automation_retry_execution, recorded with --by)", usage: retryUsage, run: cmdRetry, codes: refusalCodes},
		"cancel":     {summary: "cancel a pending or running execution (automation_cancel_execution, recorded with --by)", usage: cancelUsage, run: cmdCancel, codes: refusalCodes},
	} {
		commands[name] = c
	}
}

func main() {
	os.Exit(runMain(os.Args[1:]))
}

// runMain runs the command line args (without the program name) and
// returns the exit status (see exitCodes).
func runMain(args []string) int {
	if len(args) == 0 {
		writeCommandList(os.Stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		return runHelp(args[1:])
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "dueflow: unknown command %q: run 'dueflow help' for the list of commands\n", name)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:])
	var code exitCode
	var uerr usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK // the flag set has printed the help
	case errors.As(err, &code):
		return int(code) // the command has said why
	case errors.As(err, &uerr):
		if !uerr.printed { // the flag package prints its errors with the help
			fmt.Fprintf(os.Stderr, "dueflow %s: %v\nrun 'dueflow help %s' for its usage\n", name, uerr.err, name)
		}
		return exitUsage
	}
	fmt.Fprintf(os.Stderr, "dueflow %s: %v\n", name, err)
	return exitFailure
}
