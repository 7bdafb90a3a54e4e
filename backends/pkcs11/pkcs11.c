/* placeholder: the pkcs11 backend lands next */
#include "backend.h"
const kw_backend_ops kw_p11_ops = { .kind = "pkcs11" };
