// Package leakscan holds the log-and-row scan (its test): every provider
// and every kind of failure sent through the real engine and a real
// Postgres store, then the captured JSON logs and the rows the engine
// writes searched for the recipient's address, phone number and message
// body. It has no code of its own.
package leakscan
