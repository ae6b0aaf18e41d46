// Package lifecycle starts and stops an application's parts in order:
// hooks start in the order they were appended and stop in reverse, so that
// servers listen before providers register, and providers deregister
// before servers drain and close. If a hook fails to start, the hooks
// already started are stopped, in reverse, and Start reports both.
//
// [Run] is the main-function helper: start, wait for SIGINT/SIGTERM or the
// context, stop within a deadline. It has the same shape as fx's lifecycle
// (OnStart/OnStop), and package shoalfx maps one onto the other.
package lifecycle
