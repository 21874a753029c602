// A JDBC client of `shoplake serve --pg`, as Metabase, Tableau and DBeaver use the driver:
// connect, list tables and columns through DatabaseMetaData, run a PreparedStatement with a
// parameter. Prints one line per finding for the Rust test to compare.
//
// Usage: java -cp postgresql.jar:. LakeClient JDBC_URL USER PASSWORD
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Properties;

public class LakeClient {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        try (Connection conn = DriverManager.getConnection(args[0], props)) {
            DatabaseMetaData meta = conn.getMetaData();
            System.out.println("product\t" + meta.getDatabaseProductName() + " " + meta.getDatabaseProductVersion());
            try (ResultSet tables = meta.getTables(null, "model", "%", new String[] {"TABLE"})) {
                while (tables.next()) {
                    System.out.println("table\t" + tables.getString("TABLE_SCHEM") + "." + tables.getString("TABLE_NAME"));
                }
            }
            try (ResultSet columns = meta.getColumns(null, "model", "fact_user_events", "%")) {
                while (columns.next()) {
                    System.out.println("column\t" + columns.getString("COLUMN_NAME") + "\t" + columns.getString("TYPE_NAME"));
                }
            }
            String sql = "SELECT count(*) FROM model.fact_user_events WHERE event_type = ?";
            try (PreparedStatement statement = conn.prepareStatement(sql)) {
                for (String type : new String[] {"view", "purchase"}) {
                    statement.setString(1, type);
                    try (ResultSet rows = statement.executeQuery()) {
                        rows.next();
                        System.out.println("count\t" + type + "\t" + rows.getLong(1));
                    }
                }
            }
        }
    }
}
