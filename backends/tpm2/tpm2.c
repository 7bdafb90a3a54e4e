/* placeholder: the tpm2 backend lands next */
#include "backend.h"
const kw_backend_ops kw_tpm2_ops = { .kind = "tpm2" };
