// Forwarding header, kept only because server/main.cc includes it: the flag-name normalization
// lives in tools/common/flag_names.h. Once server/main.cc includes that header directly, delete
// this file.
#ifndef XLSTM_CLIENT_FLAG_NAMES_H_
#define XLSTM_CLIENT_FLAG_NAMES_H_

#include "tools/common/flag_names.h"  // IWYU pragma: export

#endif  // XLSTM_CLIENT_FLAG_NAMES_H_
