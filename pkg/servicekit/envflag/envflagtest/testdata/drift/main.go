// Command drift is what its const about says.
package main

const about = "drift replays matches."
