/* The reel version string. */
#ifndef REEL_VERSION_H
#define REEL_VERSION_H
#define REEL_VERSION "0.1.0"
#endif
