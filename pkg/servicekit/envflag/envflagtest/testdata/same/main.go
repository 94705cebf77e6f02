// Command same says what
// its -h says, across a line break.
package main

const about = "same says what its -h says, across a line break."
