// Parse (never run) a declarative Jenkinsfile into Groovy's AST and print what it declares
// as JSON: parameters, options, environment, stages and their steps, post sections and their
// steps, every `sh` call (its script, how it is quoted, returnStatus/returnStdout, what the
// glue does with its result), the withCredentials bindings around each step, and findings
// (a GString or a non-literal as an `sh` script is Groovy interpolation into shell text).
//
// Usage: groovy jenkinsfile_ast.groovy Jenkinsfile     (Groovy 2.4+; exit 2 on a parse error)

import groovy.json.JsonOutput
import org.codehaus.groovy.ast.CodeVisitorSupport
import org.codehaus.groovy.ast.expr.BinaryExpression
import org.codehaus.groovy.ast.expr.ClosureExpression
import org.codehaus.groovy.ast.expr.ConstantExpression
import org.codehaus.groovy.ast.expr.DeclarationExpression
import org.codehaus.groovy.ast.expr.Expression
import org.codehaus.groovy.ast.expr.GStringExpression
import org.codehaus.groovy.ast.expr.ListExpression
import org.codehaus.groovy.ast.expr.MapExpression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.ast.expr.TupleExpression
import org.codehaus.groovy.ast.stmt.CatchStatement
import org.codehaus.groovy.ast.stmt.IfStatement
import org.codehaus.groovy.ast.stmt.TryCatchStatement
import org.codehaus.groovy.control.CompilationFailedException
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.Phases

class JenkinsfileVisitor extends CodeVisitorSupport {
    // Calls that shape the pipeline rather than being steps of a stage.
    static final Set<String> STRUCTURAL = [
        'pipeline', 'agent', 'parameters', 'options', 'environment', 'stages', 'stage', 'steps',
        'post', 'script', 'when', 'tools', 'triggers', 'parallel', 'matrix', 'input',
    ] as Set
    static final Set<String> POST_CONDITIONS = [
        'always', 'changed', 'fixed', 'regression', 'aborted', 'failure', 'success',
        'unstable', 'unsuccessful', 'cleanup', 'notBuilt',
    ] as Set

    final List<String> lines
    final Map result = [
        parameters: [], options: [], environment: [:], stages: [], post: [], functions: [],
        sh: [], findings: [],
    ]

    private final List<Map> calls = []           // enclosing calls whose arguments we are in
    private final List<String> contexts = []     // 'args' or 'closure', innermost last
    private final List<Map> sections = []        // stage / post condition / function frames
    private final List<List<Map>> credentials = []
    private final List<String> conditions = []
    private final List<String> assigned = []
    private final Map<MethodCallExpression, List<String>> chains = new IdentityHashMap<>()

    JenkinsfileVisitor(String text) {
        lines = text.readLines()
    }

    void visitFunction(String name, statement) {
        Map frame = [kind: 'function', name: name, steps: []]
        result.functions << frame
        sections << frame
        statement.visit(this)
        drop(sections)
    }

    @Override
    void visitMethodCallExpression(MethodCallExpression call) {
        String name = call.methodAsString
        boolean implicit = call.implicitThis
        boolean inArgs = contexts && contexts.last() == 'args'
        String parent = calls ? calls.last().name : null
        List<Expression> args = arguments(call)
        Map<String, Expression> named = namedArguments(args)
        List<Expression> positional = args.findAll { !(it instanceof MapExpression) && !(it instanceof ClosureExpression) }

        Map section = null
        if (implicit && !inArgs) {
            if (name == 'stage' && parent == 'stages') {
                section = [kind: 'stage', name: constant(positional ? positional[0] : null), line: call.lineNumber, steps: []]
                result.stages << section
            } else if (parent == 'post' && name in POST_CONDITIONS) {
                section = [kind: 'post', condition: name, line: call.lineNumber, steps: []]
                result.post << section
            } else if (parent == 'parameters') {
                result.parameters << [
                    name: constant(named.name), type: name,
                    default: named.containsKey('defaultValue') ? constant(named.defaultValue) : null,
                    line: call.lineNumber,
                ]
            } else if (parent == 'options') {
                result.options << name
            }
        }

        // A chain like sh(...).trim().readLines().last(): remember what the glue does with sh.
        List<String> chain = []
        Expression inner = call
        while (inner instanceof MethodCallExpression && !((MethodCallExpression) inner).implicitThis) {
            chain << ((MethodCallExpression) inner).methodAsString
            inner = ((MethodCallExpression) inner).objectExpression
        }
        if (inner instanceof MethodCallExpression && inner != call && ((MethodCallExpression) inner).methodAsString == 'sh') {
            chains.putIfAbsent((MethodCallExpression) inner, chain.reverse())
        }

        List<Map> bindings = null
        if (implicit && sections && !(name in STRUCTURAL) && !(section)) {
            Map step = step(call, name, inArgs, named, positional)
            if (name == 'withCredentials') {
                bindings = step.bindings
            }
        }

        call.objectExpression.visit(this)
        call.method.visit(this)
        calls << [name: name]
        if (section) {
            sections << section
        }
        if (bindings != null) {
            credentials << bindings
        }
        args.each { Expression arg ->
            if (arg instanceof ClosureExpression) {
                arg.visit(this)
            } else {
                contexts << 'args'
                arg.visit(this)
                drop(contexts)
            }
        }
        if (bindings != null) {
            drop(credentials)
        }
        if (section) {
            drop(sections)
        }
        drop(calls)
    }

    @Override
    void visitClosureExpression(ClosureExpression closure) {
        contexts << 'closure'
        super.visitClosureExpression(closure)
        drop(contexts)
    }

    @Override
    void visitBinaryExpression(BinaryExpression expression) {
        if (expression.operation.text == '=') {
            String target = expression.leftExpression.text
            if (calls && calls.last().name == 'environment' && !sections) {
                result.environment[target] = describe(expression.rightExpression)
            }
            assigned << target
            expression.leftExpression.visit(this)
            expression.rightExpression.visit(this)
            drop(assigned)
        } else {
            super.visitBinaryExpression(expression)
        }
    }

    @Override
    void visitDeclarationExpression(DeclarationExpression expression) {
        visitBinaryExpression(expression)
    }

    @Override
    void visitIfElse(IfStatement statement) {
        String condition = statement.booleanExpression.expression.text
        statement.booleanExpression.visit(this)
        conditions << condition
        statement.ifBlock.visit(this)
        drop(conditions)
        conditions << "!(${condition})".toString()
        statement.elseBlock.visit(this)
        drop(conditions)
    }

    @Override
    void visitTryCatchFinally(TryCatchStatement statement) {
        statement.tryStatement.visit(this)
        for (CatchStatement handler : statement.catchStatements) {
            conditions << "catch (${handler.variable.name})".toString()
            handler.code.visit(this)
            drop(conditions)
        }
        statement.finallyStatement?.visit(this)
    }

    private Map step(MethodCallExpression call, String name, boolean nested, Map<String, Expression> named, List<Expression> positional) {
        Map section = sections.last()
        Map step = [
            step: name, line: call.lineNumber, nested: nested,
            conditions: new ArrayList(conditions),
            credentials: credentials.flatten().collect { it.variables }.flatten(),
            positional: positional.collect { describe(it) },
            named: named.collectEntries { k, v -> [k, describe(v)] },
        ]
        if (name == 'withCredentials') {
            step.bindings = positional ? bindingsOf(positional[0]) : []
        }
        if (name == 'sh') {
            Expression script = named.containsKey('script') ? named.script : (positional ? positional[0] : null)
            Map described = describe(script)
            step.script = described.text
            step.scriptKind = described.kind
            step.quote = described.quote
            step.returnStdout = named.containsKey('returnStdout') && constant(named.returnStdout) == true
            step.returnStatus = named.containsKey('returnStatus') && constant(named.returnStatus) == true
            step.assignedTo = assigned ? assigned.last() : null
            step.chain = chains.get(call) ?: []
            String where = section.kind == 'stage' ? "stage ${section.name}" : (section.kind == 'post' ? "post ${section.condition}" : "function ${section.name}")
            step.where = where.toString()
            result.sh << step
            if (described.kind == 'gstring') {
                finding(call, "sh script in ${where} is a GString: Groovy interpolates ${described.values} into shell text; use a single-quoted string and environment variables")
            } else if (described.kind != 'constant') {
                finding(call, "sh script in ${where} is not a string literal (${described.text})")
            } else if (described.quote != "'") {
                finding(call, "sh script in ${where} is not single-quoted (${described.quote}); single quotes keep Groovy out of the shell text")
            }
        }
        section.steps << step
        return step
    }

    private List<Map> bindingsOf(Expression expression) {
        List<Expression> items = expression instanceof ListExpression ? ((ListExpression) expression).expressions : [expression]
        return items.findAll { it instanceof MethodCallExpression }.collect { MethodCallExpression binding ->
            Map<String, Expression> named = namedArguments(arguments(binding))
            Map values = named.collectEntries { k, v -> [k, constant(v)] }
            [
                type: binding.methodAsString,
                credentialsId: values.credentialsId,
                variables: values.findAll { k, v -> k.endsWith('Variable') }.values() as List,
                arguments: values,
            ]
        }
    }

    private void finding(MethodCallExpression call, String message) {
        result.findings << "line ${call.lineNumber}: ${message}".toString()
    }

    // Java 17 lists have no removeLast(); Groovy 2.4's pop() order differs from later Groovys.
    private static void drop(List list) {
        list.remove(list.size() - 1)
    }

    private static List<Expression> arguments(MethodCallExpression call) {
        Expression args = call.arguments
        return args instanceof TupleExpression ? ((TupleExpression) args).expressions : [args]
    }

    private static Map<String, Expression> namedArguments(List<Expression> args) {
        Map<String, Expression> named = [:]
        args.findAll { it instanceof MapExpression }.each { MapExpression map ->
            map.mapEntryExpressions.each { named[it.keyExpression.text] = it.valueExpression }
        }
        return named
    }

    private static Object constant(Expression expression) {
        return expression instanceof ConstantExpression ? ((ConstantExpression) expression).value : expression?.text
    }

    private Map describe(Expression expression) {
        if (expression == null) {
            return [kind: 'missing', text: null, quote: null]
        }
        if (expression instanceof ConstantExpression) {
            Object value = ((ConstantExpression) expression).value
            return [kind: value instanceof String ? 'constant' : 'literal', text: value, quote: quoteAt(expression)]
        }
        if (expression instanceof GStringExpression) {
            GStringExpression gstring = (GStringExpression) expression
            return [kind: 'gstring', text: gstringText(gstring), quote: quoteAt(expression), values: gstring.values*.text]
        }
        return [kind: 'expression', text: expression.text, quote: null]
    }

    // The GString as written, with each value as ${text}.
    private static String gstringText(GStringExpression gstring) {
        StringBuilder out = new StringBuilder()
        List<ConstantExpression> strings = gstring.strings
        List<Expression> values = gstring.values
        int n = Math.max(strings.size(), values.size())
        for (int i = 0; i < n; i++) {
            if (i < strings.size()) {
                out << strings[i].value
            }
            if (i < values.size()) {
                out << '${' << values[i].text << '}'
            }
        }
        return out.toString()
    }

    // How the literal starts in the source: ', ", ''', """, / or $/ (null if unknown).
    private String quoteAt(Expression expression) {
        int line = expression.lineNumber
        int column = expression.columnNumber
        if (line < 1 || line > lines.size() || column < 1) {
            return null
        }
        String rest = lines[line - 1].substring(Math.min(column - 1, lines[line - 1].length()))
        for (String quote : ["'''", '"""', '$/', "'", '"', '/']) {
            if (rest.startsWith(quote)) {
                return quote
            }
        }
        return null
    }
}

if (args.length != 1) {
    System.err.println('usage: groovy jenkinsfile_ast.groovy JENKINSFILE')
    System.exit(2)
}
File file = new File(args[0])
if (!file.isFile()) {
    System.err.println("error: no file ${file}")
    System.exit(2)
}
String text = file.getText('UTF-8')
CompilationUnit unit = new CompilationUnit()
unit.addSource(file.name, text)
try {
    unit.compile(Phases.CONVERSION)
} catch (CompilationFailedException exc) {
    System.err.println("error: ${file} does not parse as Groovy: ${exc.message}")
    System.exit(2)
}
def module = unit.AST.modules[0]
JenkinsfileVisitor visitor = new JenkinsfileVisitor(text)
module.statementBlock.visit(visitor)
module.methods.each { method ->
    visitor.visitFunction(method.name, method.code)
}
visitor.result.file = file.path
println JsonOutput.prettyPrint(JsonOutput.toJson(visitor.result))
