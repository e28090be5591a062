// Package expand replaces Dagu-style variable references in text, the way
// daguq's CLI expands the with: values that Dagu's step_types hand over
// unexpanded: ${NAME} and $NAME become the variable's value, ${NAME.a.b} and
// ${NAME.items[0]} a field of the JSON the variable holds (a previous step's
// output:), \$ is a literal $. A reference whose variable is not set, or
// whose field is missing, stays as written: nothing silently becomes empty.
package expand
