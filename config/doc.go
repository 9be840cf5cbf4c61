// Package config is p2pd's configuration: the TOML schema, its defaults, loading through viper
// with P2PD_ environment overrides, and validation.
//
// It is the only package that imports viper, always through viper.New(). Everything else takes
// the plain *Config that Load returns.
//
// # Layers
//
// Values come from three places, later ones winning:
//
//  1. Default(): node name = host name, key file "identity.key" and state under the config file's
//     directory (or DefaultStateDir() without a file), UDP port 4242 on all addresses, mDNS on,
//     control socket DefaultControlSocket(), log level info in text.
//  2. The TOML file (DefaultPath() unless a path is given).
//  3. Environment variables P2PD_<SECTION>_<KEY> for every key of [node], [discovery] and [log]
//     (P2PD_NODE_LISTEN, P2PD_DISCOVERY_MDNS, P2PD_LOG_LEVEL, ...). Lists are comma-separated,
//     booleans are anything strconv.ParseBool accepts; an empty variable counts as unset. The
//     array tables [[peers]], [[services]] and [[forwards]] come from the file only.
//
// # Errors
//
// Unknown keys are errors naming the key (with its array index) and, when one is close, the key
// that was probably meant: *UnknownKeyError, matching ErrUnknownKey. A value of the wrong type
// or that fails validation is a *KeyError naming the key, the value and the fix, matching
// ErrType or ErrInvalid. Load and Validate report every problem at once through errors.Join.
//
// Relative paths (node.key_file, node.control_socket, node.state_dir) are resolved against the
// directory of the config file, so Load always returns absolute paths.
package config
